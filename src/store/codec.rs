//! The one place where stored TEXT and INTEGER columns become domain values.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use crate::domain::{Currency, Money, OrderStatus};

/// Milliseconds since the Unix epoch.
pub fn to_millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub fn from_millis(millis: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {millis}")))
}

/// Exact decimal text: `Decimal`'s own `Display` keeps every stored digit.
pub fn amount_to_text(amount: Decimal) -> String {
    amount.to_string()
}

pub fn money_from_columns(amount: &str, currency: &str) -> Result<Money, StoreError> {
    let amount =
        Decimal::from_str(amount).map_err(|_| StoreError::Corrupt(format!("amount {amount:?}")))?;
    let currency = Currency::parse(currency)
        .map_err(|_| StoreError::Corrupt(format!("currency {currency:?}")))?;
    Ok(Money::new(amount, currency))
}

pub fn status_from_column(status: &str) -> Result<OrderStatus, StoreError> {
    OrderStatus::parse(status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        for text in ["0", "10.5000", "0.0150000", "123456789.123456789"] {
            let amount = Decimal::from_str(text).unwrap();
            let stored = amount_to_text(amount);
            assert_eq!(stored, text);
            assert_eq!(money_from_columns(&stored, "USD").unwrap().amount, amount);
        }
        assert!(money_from_columns("1.0.0", "USD").is_err());
    }

    #[test]
    fn times_round_trip_to_the_millisecond() {
        let now = Utc.timestamp_millis_opt(1_767_225_600_123).unwrap();
        assert_eq!(from_millis(to_millis(now)).unwrap(), now);
    }
}
