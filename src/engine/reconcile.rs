//! Reconciliation against Telegram's own ledger of Star payments.
//!
//! teloxide's long polling confirms a batch of updates to Telegram before the handlers
//! have run, so a crash in that instant loses a `successful_payment`: the buyer has paid
//! and the shop never heard of it. `getStarTransactions` lists every Star transaction of
//! the bot, oldest first; an incoming one (`source` = a user, `invoice_payment`) has the
//! payment's `telegram_payment_charge_id` as its `id` and carries the invoice payload.
//!
//! [`Engine::reconcile_stars`] reads the ledger from where the last run stopped (the
//! `star_ledger` row) and sends every incoming payment whose payload names an order and
//! whose charge id has no `payments` row through the same path as a `successful_payment`
//! ([`Engine::record_payment`], with the transaction's date as the moment of payment):
//! recorded once (the charge id is UNIQUE, so a payment seen by both paths counts once),
//! then submitted, or refunded when it pays for no payable order. Refunds (outgoing,
//! `receiver` = a user), payments that name no order (another bot's payload, paid media)
//! and other partners are passed over. The read position moves only past entries that
//! were dealt with: a payment that could not be recorded is read again next time.
//!
//! It runs when the poller starts, every `limits.star_reconcile_interval`, and before a
//! sweep expires unpaid orders (so a lost payment made just before its deadline is
//! applied instead of the order expiring). Fiat payments are not in the Star ledger:
//! their lost updates are not recovered here.
//!
//! The page is read as plain JSON rather than teloxide's `StarTransactions`, so a
//! transaction kind newer than teloxide (an unknown `transaction_type`) is passed over
//! instead of failing the whole page.

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use teloxide::requests::{JsonRequest, Payload};

use super::payments::parse_payload;
use super::{Engine, EngineError};
use crate::domain::Money;
use crate::store::NewPayment;

/// Transactions per `getStarTransactions` call (Telegram's maximum).
pub const PAGE_SIZE: u8 = 100;
/// Pages read in one run; the next run goes on from there.
const MAX_PAGES: usize = 50;

/// What one run found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LedgerReport {
    /// Ledger entries read.
    pub read: usize,
    /// Payments the shop had not recorded, now recorded (and submitted or refunded).
    pub applied: usize,
    /// Payments already recorded (the update arrived, or an earlier run found them).
    pub known: usize,
    /// Refunds, payments naming no order, and other kinds: passed over.
    pub ignored: usize,
    /// The read position after the run.
    pub next_offset: u64,
}

/// `getStarTransactions` answered as raw JSON.
#[derive(Debug, Clone, Serialize)]
struct StarLedgerPage {
    offset: u32,
    limit: u8,
}

impl Payload for StarLedgerPage {
    type Output = Value;
    const NAME: &'static str = "GetStarTransactions";
}

/// One ledger entry, as far as reconciliation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A user paid an invoice.
    Payment {
        id: String,
        stars: u32,
        date: DateTime<Utc>,
        buyer: i64,
        payload: String,
    },
    /// Stars sent back to a user (`id` = the payment's).
    Refund { id: String },
    /// Anything else (withdrawals, ads, paid media, unreadable entries).
    Other,
}

/// Reads one `StarTransaction` JSON object leniently.
pub(crate) fn read_entry(v: &Value) -> Entry {
    let Some(id) = v.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return Entry::Other;
    };
    let is_invoice = |partner: &Value| {
        partner.get("type").and_then(Value::as_str) == Some("user")
            && partner
                .get("transaction_type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "invoice_payment")
    };
    if let Some(receiver) = v.get("receiver") {
        return if is_invoice(receiver) {
            Entry::Refund { id }
        } else {
            Entry::Other
        };
    }
    let Some(source) = v.get("source").filter(|s| is_invoice(s)) else {
        return Entry::Other;
    };
    let fraction = v
        .get("nanostar_amount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let stars = v
        .get("amount")
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok());
    let date = v
        .get("date")
        .and_then(Value::as_i64)
        .and_then(|d| Utc.timestamp_opt(d, 0).single());
    let buyer = source
        .get("user")
        .and_then(|u| u.get("id"))
        .and_then(Value::as_i64);
    let payload = source.get("invoice_payload").and_then(Value::as_str);
    match (stars, date, buyer, payload) {
        (Some(stars), Some(date), Some(buyer), Some(payload)) if fraction == 0 => Entry::Payment {
            id,
            stars,
            date,
            buyer,
            payload: payload.to_owned(),
        },
        _ => Entry::Other,
    }
}

impl Engine {
    /// One pass over the Star ledger from the stored read position (see the module
    /// documentation). Runs are serialized; the position is stored as it moves.
    pub async fn reconcile_stars(&self) -> Result<LedgerReport, EngineError> {
        let _one_at_a_time = self.inner.reconciling.lock().await;
        let store = &self.inner.store;
        let start = store.star_ledger_offset().await?;
        let mut report = LedgerReport {
            next_offset: start,
            ..LedgerReport::default()
        };
        // Read first, act after: a refund later in the window marks its payment as
        // settled outside the shop (never applied).
        let mut entries = Vec::new();
        for _ in 0..MAX_PAGES {
            let offset = u32::try_from(start + entries.len() as u64).map_err(|_| {
                EngineError::Invalid(format!("Star ledger offset {start} out of range"))
            })?;
            let page = self.star_page(offset).await?;
            let full = page.len() >= usize::from(PAGE_SIZE);
            entries.extend(page.iter().map(read_entry));
            if !full {
                break;
            }
        }
        let refunded: HashSet<&str> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Refund { id } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        for entry in &entries {
            match entry {
                Entry::Payment {
                    id,
                    stars,
                    date,
                    buyer,
                    payload,
                } => match parse_payload(payload) {
                    None => report.ignored += 1,
                    Some(_) if refunded.contains(id.as_str()) => report.known += 1,
                    Some(order) => {
                        if store.payment_recorded(id).await? {
                            report.known += 1;
                        } else {
                            tracing::warn!(%order, charge = %id, "a Star payment whose update never arrived");
                            let new = NewPayment {
                                buyer_id: *buyer,
                                telegram_payment_charge_id: id.clone(),
                                provider_payment_charge_id: None,
                                amount: Money::stars(u64::from(*stars)),
                                invoice_payload: payload.clone(),
                                order_id: Some(order),
                            };
                            if !self.record_payment(&new, *date).await {
                                break;
                            }
                            report.applied += 1;
                        }
                    }
                },
                Entry::Refund { .. } | Entry::Other => report.ignored += 1,
            }
            report.read += 1;
            report.next_offset += 1;
            // Stored as it moves, so an interrupted run does not redo its work.
            if report.read.is_multiple_of(usize::from(PAGE_SIZE)) {
                store.advance_star_ledger(report.next_offset).await?;
            }
        }
        if report.next_offset > start {
            store.advance_star_ledger(report.next_offset).await?;
        }
        if report.applied > 0 {
            tracing::info!(?report, "Star ledger reconciled");
        }
        Ok(report)
    }

    /// A reconciliation whose failure is only logged (the next run tries again).
    pub(crate) async fn reconcile_stars_logged(&self) {
        if let Err(error) = self.reconcile_stars().await {
            tracing::warn!(%error, "reading the Star ledger; will retry");
        }
    }

    async fn star_page(&self, offset: u32) -> Result<Vec<Value>, EngineError> {
        let bot = self.inner.bot.inner().clone();
        let answer = JsonRequest::new(
            bot,
            StarLedgerPage {
                offset,
                limit: PAGE_SIZE,
            },
        )
        .await?;
        match answer.get("transactions").and_then(Value::as_array) {
            Some(list) => Ok(list.clone()),
            None => Err(EngineError::Invalid(
                "getStarTransactions answered without a transactions list".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(transaction_type: &str) -> Value {
        json!({"type": "user", "transaction_type": transaction_type,
               "user": {"id": 42, "is_bot": false, "first_name": "B"},
               "invoice_payload": "17"})
    }

    #[test]
    fn entries_are_read_leniently() {
        let paid = json!({"id": "stx1", "amount": 500, "date": 1_700_000_000, "source": user("invoice_payment")});
        assert_eq!(
            read_entry(&paid),
            Entry::Payment {
                id: "stx1".into(),
                stars: 500,
                date: Utc.timestamp_opt(1_700_000_000, 0).single().expect("date"),
                buyer: 42,
                payload: "17".into(),
            }
        );
        let refund = json!({"id": "stx1", "amount": 500, "date": 1_700_000_100, "receiver": user("invoice_payment")});
        assert_eq!(read_entry(&refund), Entry::Refund { id: "stx1".into() });
        for other in [
            json!({"id": "x", "amount": 5, "date": 1, "source": user("paid_media_payment")}),
            json!({"id": "x", "amount": 5, "date": 1, "source": user("some_future_kind")}),
            json!({"id": "x", "amount": 5, "date": 1, "source": {"type": "fragment"}}),
            json!({"id": "x", "amount": 5, "date": 1, "receiver": {"type": "telegram_ads"}}),
            json!({"id": "x", "amount": 5, "nanostar_amount": 3, "date": 1, "source": user("invoice_payment")}),
            json!({"id": "x", "amount": -5, "date": 1, "source": user("invoice_payment")}),
            json!({"amount": 5, "date": 1, "source": user("invoice_payment")}),
            json!({"id": "x", "amount": 5, "source": user("invoice_payment")}),
            json!("garbage"),
        ] {
            assert_eq!(read_entry(&other), Entry::Other, "{other}");
        }
    }
}
