//! The bot's Telegram Star ledger in the fake: one [`StarTransaction`] per Stars payment
//! (incoming, `source` = the paying user) and per `refundStarPayment` (outgoing,
//! `receiver` = the user, the same `id` as the payment it returns), served by
//! `getStarTransactions(offset, limit)` in chronological order, oldest first.
//!
//! Shapes follow the Bot API (`StarTransactions`, `StarTransaction`,
//! `TransactionPartnerUser` with `transaction_type: "invoice_payment"` and
//! `invoice_payload`) and are checked against teloxide-core 0.13's types in the tests
//! below. `id` coincides with `SuccessfulPayment.telegram_payment_charge_id` for a
//! payment and with the original payment's id for its refund. `offset` is the number of
//! transactions to skip; `limit` 1–100 (default 100), anything else is refused as
//! Telegram refuses it. Fiat payments never appear here, as on Telegram.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::methods::Params;
use super::state::{ApiErr, State, user_json};

/// One ledger entry as the test sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarTransaction {
    /// The charge id (a refund carries the id of the payment it returns).
    pub id: String,
    /// Whole Stars moved.
    pub amount: u32,
    /// Unix seconds.
    pub date: i64,
    pub user_id: i64,
    pub invoice_payload: String,
    /// `true`: a payment from the user (`source`); `false`: a refund to them (`receiver`).
    pub incoming: bool,
}

/// Records a Stars payment or refund in the ledger (other currencies are not Stars).
pub(crate) fn record(
    st: &mut State,
    currency: &str,
    id: &str,
    amount: u32,
    user_id: i64,
    payload: &str,
    incoming: bool,
) {
    if currency != "XTR" {
        return;
    }
    st.star_transactions.push(StarTransaction {
        id: id.to_owned(),
        amount,
        date: super::state::now_unix(),
        user_id,
        invoice_payload: payload.to_owned(),
        incoming,
    });
}

/// `getStarTransactions`.
pub(crate) fn get_star_transactions(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let offset = match p.i64("offset") {
        None => 0,
        Some(o) if o >= 0 => usize::try_from(o).unwrap_or(usize::MAX),
        Some(_) => return Err(ApiErr::bad("Bad Request: OFFSET_INVALID")),
    };
    let limit = match p.i64("limit") {
        None => 100,
        Some(l) if (1..=100).contains(&l) => usize::try_from(l).unwrap_or(100),
        Some(_) => return Err(ApiErr::bad("Bad Request: LIMIT_INVALID")),
    };
    let transactions: Vec<Value> = st
        .star_transactions
        .iter()
        .skip(offset)
        .take(limit)
        .map(|t| transaction_json(st, t))
        .collect();
    Ok(json!({ "transactions": transactions }))
}

fn transaction_json(st: &State, t: &StarTransaction) -> Value {
    let user = st
        .chats
        .get(&t.user_id)
        .map(|c| user_json(&c.user))
        .unwrap_or_else(|| json!({"id": t.user_id, "is_bot": false, "first_name": "User"}));
    let partner = json!({
        "type": "user",
        "transaction_type": "invoice_payment",
        "user": user,
        "invoice_payload": t.invoice_payload,
    });
    let side = if t.incoming { "source" } else { "receiver" };
    json!({ "id": t.id, "amount": t.amount, "date": t.date, side: partner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::telegram::state::UserInfo;
    use crate::sandbox::telegram::types::BotProfile;

    fn state_with_ledger() -> State {
        let mut st = State::new(
            BotProfile {
                id: 1,
                first_name: "Kiosk".into(),
                username: "kiosk_bot".into(),
            },
            1,
        );
        st.register_user(UserInfo {
            id: 42,
            first_name: "Buyer".into(),
            username: Some("buyer".into()),
            language_code: "en".into(),
        });
        record(&mut st, "XTR", "stx1", 500, 42, "17", true);
        record(&mut st, "USD", "fiat1", 999, 42, "18", true);
        record(&mut st, "XTR", "stx1", 500, 42, "17", false);
        st
    }

    fn params(v: Value) -> Params {
        Params {
            json: v.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn the_ledger_reads_as_teloxide_star_transactions() {
        use teloxide::types::{StarTransactions, TransactionPartner};
        let mut st = state_with_ledger();
        let page = get_star_transactions(&mut st, &params(json!({}))).expect("page");
        let parsed: StarTransactions = serde_json::from_value(page).expect("teloxide shape");
        assert_eq!(
            parsed.transactions.len(),
            2,
            "fiat is not in the Star ledger"
        );
        let paid = &parsed.transactions[0];
        assert_eq!(paid.id.0, "stx1");
        assert_eq!(paid.amount, 500);
        assert!(paid.receiver.is_none());
        let Some(TransactionPartner::User(user)) = &paid.source else {
            panic!("a payment comes from a user: {paid:?}");
        };
        assert_eq!(user.user.id.0, 42);
        let invoice = user.kind.invoice_payment().expect("an invoice payment");
        assert_eq!(invoice.invoice_payload.as_deref(), Some("17"));
        let refund = &parsed.transactions[1];
        assert_eq!(refund.id.0, "stx1", "a refund carries the payment's id");
        assert!(refund.source.is_none());
        assert!(matches!(refund.receiver, Some(TransactionPartner::User(_))));
    }

    #[test]
    fn pages_by_offset_and_limit() {
        let mut st = state_with_ledger();
        let page = get_star_transactions(&mut st, &params(json!({"offset": 1, "limit": 1})))
            .expect("page");
        let list = page["transactions"].as_array().cloned().unwrap_or_default();
        assert_eq!(list.len(), 1);
        assert!(list[0].get("receiver").is_some());
        let past = get_star_transactions(&mut st, &params(json!({"offset": 5}))).expect("page");
        assert_eq!(past["transactions"], json!([]));
        for bad in [
            json!({"limit": 0}),
            json!({"limit": 101}),
            json!({"offset": -1}),
        ] {
            assert!(get_star_transactions(&mut st, &params(bad)).is_err());
        }
    }
}
