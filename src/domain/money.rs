//! Exact money. Amounts are `rust_decimal::Decimal` end to end; providers' decimal
//! strings are parsed, never routed through `f64`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO-4217-like currency code (`USD`, `RUB`), `XTR` for Telegram Stars, or a coin
/// ticker (`TON`, `USDC`). Upper-case ASCII letters and digits, 2–10 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub const STARS: &'static str = "XTR";
    pub const USD: &'static str = "USD";

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let code = code.trim().to_ascii_uppercase();
        let valid = (2..=10).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if valid {
            Ok(Self(code))
        } else {
            Err(MoneyError::BadCurrency(code))
        }
    }

    pub fn stars() -> Self {
        Self(Self::STARS.to_owned())
    }

    pub fn usd() -> Self {
        Self(Self::USD.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_stars(&self) -> bool {
        self.0 == Self::STARS
    }

    /// Digits after the decimal point in Telegram's `total_amount` (smallest units).
    /// Stars have none; the fiat currencies Telegram accepts mostly have two; the few
    /// without minor units are listed here.
    pub fn minor_digits(&self) -> u32 {
        match self.0.as_str() {
            "XTR" | "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "PYG" | "IDR" => 0,
            _ => 2,
        }
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not a currency code")]
    BadCurrency(String),
    #[error("{0:?} is not a decimal amount")]
    BadAmount(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("{amount} {currency} does not fit Telegram's smallest units")]
    NotRepresentable { amount: Decimal, currency: Currency },
}

/// An exact amount in one currency.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Parses a provider's decimal string such as `"10.5000"`.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let value = Decimal::from_str(amount.trim())
            .map_err(|_| MoneyError::BadAmount(amount.to_owned()))?;
        Ok(Self::new(value, Currency::parse(currency)?))
    }

    pub fn stars(count: u64) -> Self {
        Self::new(Decimal::from(count), Currency::stars())
    }

    pub fn usd(amount: Decimal) -> Self {
        Self::new(amount, Currency::usd())
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(
                self.currency.clone(),
                other.currency.clone(),
            ));
        }
        Ok(Money::new(
            self.amount + other.amount,
            self.currency.clone(),
        ))
    }

    /// Telegram's `total_amount`: the amount in the currency's smallest units.
    /// Refuses amounts with more precision than the currency has, or negative ones.
    pub fn to_minor_units(&self) -> Result<u32, MoneyError> {
        use rust_decimal::prelude::ToPrimitive;
        let scaled = self.amount * Decimal::from(10u64.pow(self.currency.minor_digits()));
        if scaled.fract() != Decimal::ZERO || scaled.is_sign_negative() {
            return Err(self.not_representable());
        }
        scaled.to_u32().ok_or_else(|| self.not_representable())
    }

    fn not_representable(&self) -> MoneyError {
        MoneyError::NotRepresentable {
            amount: self.amount,
            currency: self.currency.clone(),
        }
    }

    /// The inverse of [`Money::to_minor_units`].
    pub fn from_minor_units(units: u32, currency: Currency) -> Self {
        let amount = Decimal::new(i64::from(units), currency.minor_digits());
        Self::new(amount, currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.amount.normalize();
        if shown.scale() < self.currency.minor_digits() {
            shown.rescale(self.currency.minor_digits());
        }
        if self.currency.is_stars() {
            write!(f, "{} ⭐", shown)
        } else {
            write!(f, "{} {}", shown, self.currency)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_provider_decimal_strings_exactly() {
        let m = Money::parse("10.5000", "usd").unwrap();
        assert_eq!(m.amount, dec("10.5"));
        assert_eq!(m.currency.as_str(), "USD");
        assert!(Money::parse("ten", "USD").is_err());
        assert!(Money::parse("1", "U$").is_err());
    }

    #[test]
    fn minor_units_round_trip() {
        let rub = Money::parse("199.99", "RUB").unwrap();
        assert_eq!(rub.to_minor_units().unwrap(), 19999);
        assert_eq!(
            Money::from_minor_units(19999, Currency::parse("RUB").unwrap()),
            rub
        );
        assert_eq!(Money::stars(250).to_minor_units().unwrap(), 250);
        assert!(
            Money::parse("1.001", "RUB")
                .unwrap()
                .to_minor_units()
                .is_err()
        );
        assert!(Money::parse("-1", "RUB").unwrap().to_minor_units().is_err());
        assert!(
            Money::parse("0.5", "XTR")
                .unwrap()
                .to_minor_units()
                .is_err()
        );
    }

    #[test]
    fn adding_different_currencies_is_refused() {
        let a = Money::parse("1", "USD").unwrap();
        let b = Money::parse("1", "RUB").unwrap();
        assert!(a.checked_add(&b).is_err());
        assert_eq!(a.checked_add(&a).unwrap().amount, dec("2"));
    }

    #[test]
    fn display_pads_fiat_and_marks_stars() {
        assert_eq!(Money::parse("5", "USD").unwrap().to_string(), "5.00 USD");
        assert_eq!(Money::stars(75).to_string(), "75 ⭐");
    }
}
