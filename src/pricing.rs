//! Provider cost → buyer price. The shop's margin is the larger of the markup (plus a
//! fixed fee) and the minimum margin; prices are rounded *up*: Stars to a whole Star,
//! fiat to the currency's smallest unit. Rounding never undercharges.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::config::{FiatConfig, PricingConfig};
use crate::domain::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// A cost in a currency without a configured USD value (`[pricing.usd_value]`).
    #[error("no USD value configured for {0}")]
    UnknownCurrency(Currency),
    #[error("the price is out of range")]
    OutOfRange,
    #[error("a cost cannot be negative")]
    NegativeCost,
}

/// What the buyer pays for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerPrice {
    pub cost_usd: Decimal,
    /// Sale price in USD before rounding into a payment currency.
    pub price_usd: Decimal,
    pub stars: Money,
    pub fiat: Option<Money>,
}

#[derive(Debug, Clone)]
pub struct Pricing {
    config: PricingConfig,
    fiat: Option<(Currency, Decimal)>,
}

impl Pricing {
    pub fn new(config: PricingConfig, fiat: Option<&FiatConfig>) -> Self {
        Self {
            config,
            fiat: fiat.map(|f| (f.currency.clone(), f.per_usd)),
        }
    }

    /// The provider's cost in USD, through `[pricing.usd_value]` for other currencies.
    pub fn cost_in_usd(&self, cost: &Money) -> Result<Decimal, PricingError> {
        if cost.amount.is_sign_negative() {
            return Err(PricingError::NegativeCost);
        }
        if cost.currency.as_str() == Currency::USD {
            return Ok(cost.amount);
        }
        let rate = self
            .config
            .usd_value
            .get(&cost.currency)
            .ok_or_else(|| PricingError::UnknownCurrency(cost.currency.clone()))?;
        cost.amount
            .checked_mul(*rate)
            .ok_or(PricingError::OutOfRange)
    }

    /// max(cost × (1 + markup) + fee, cost + minimum margin), in USD.
    pub fn price_usd(&self, cost_usd: Decimal) -> Result<Decimal, PricingError> {
        let hundred = Decimal::ONE_HUNDRED;
        let marked_up = cost_usd
            .checked_mul(hundred + self.config.markup_percent)
            .map(|v| v / hundred)
            .and_then(|v| v.checked_add(self.config.fixed_fee_usd))
            .ok_or(PricingError::OutOfRange)?;
        let floor = cost_usd
            .checked_add(self.config.min_margin_usd)
            .ok_or(PricingError::OutOfRange)?;
        Ok(marked_up.max(floor))
    }

    pub fn price(&self, cost: &Money) -> Result<BuyerPrice, PricingError> {
        let cost_usd = self.cost_in_usd(cost)?;
        let price_usd = self.price_usd(cost_usd)?;
        let stars = (price_usd / self.config.usd_per_star)
            .round_dp_with_strategy(0, RoundingStrategy::ToPositiveInfinity)
            .max(Decimal::ONE);
        let fiat = match &self.fiat {
            Some((currency, per_usd)) => {
                let amount = price_usd
                    .checked_mul(*per_usd)
                    .ok_or(PricingError::OutOfRange)?
                    .round_dp_with_strategy(
                        currency.minor_digits(),
                        RoundingStrategy::ToPositiveInfinity,
                    );
                let money = Money::new(amount, currency.clone());
                money
                    .to_minor_units()
                    .map_err(|_| PricingError::OutOfRange)?;
                Some(money)
            }
            None => None,
        };
        let stars = Money::new(stars, Currency::stars());
        stars
            .to_minor_units()
            .map_err(|_| PricingError::OutOfRange)?;
        Ok(BuyerPrice {
            cost_usd,
            price_usd,
            stars,
            fiat,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;
    use crate::secret::Secret;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn pricing(markup: &str, fee: &str, min_margin: &str, usd_per_star: &str) -> Pricing {
        let mut usd_value = BTreeMap::new();
        usd_value.insert(Currency::parse("TON").unwrap(), d("3.25"));
        let config = PricingConfig {
            markup_percent: d(markup),
            fixed_fee_usd: d(fee),
            min_margin_usd: d(min_margin),
            usd_per_star: d(usd_per_star),
            usd_value,
        };
        let fiat = FiatConfig {
            provider_token: Secret::new("t"),
            currency: Currency::parse("RUB").unwrap(),
            per_usd: d("92.5"),
        };
        Pricing::new(config, Some(&fiat))
    }

    #[test]
    fn worked_example() {
        // $10.50 cost, 10 % markup, $0.05 fee → $11.60 → 893 Stars at $0.013, 1073.00 RUB.
        let p = pricing("10", "0.05", "0.10", "0.013");
        let price = p.price(&Money::parse("10.5000", "USD").unwrap()).unwrap();
        assert_eq!(price.price_usd, d("11.60"));
        assert_eq!(price.stars, Money::stars(893));
        assert_eq!(price.fiat, Some(Money::parse("1073.00", "RUB").unwrap()));
    }

    #[test]
    fn minimum_margin_wins_for_cheap_items() {
        let p = pricing("10", "0", "0.50", "0.01");
        let price = p.price(&Money::parse("1", "USD").unwrap()).unwrap();
        assert_eq!(price.price_usd, d("1.50"));
        assert_eq!(price.stars, Money::stars(150));
    }

    #[test]
    fn other_currencies_go_through_their_usd_value() {
        let p = pricing("0", "0", "0", "0.01");
        let price = p.price(&Money::parse("2", "TON").unwrap()).unwrap();
        assert_eq!(price.cost_usd, d("6.50"));
        assert_eq!(price.stars, Money::stars(650));
        let unknown = p.price(&Money::parse("2", "EUR").unwrap());
        assert_eq!(
            unknown,
            Err(PricingError::UnknownCurrency(
                Currency::parse("EUR").unwrap()
            ))
        );
        assert_eq!(
            p.price(&Money::parse("-1", "USD").unwrap()),
            Err(PricingError::NegativeCost)
        );
    }

    #[test]
    fn a_free_item_still_costs_one_star() {
        let p = pricing("0", "0", "0", "0.013");
        assert_eq!(
            p.price(&Money::parse("0", "USD").unwrap()).unwrap().stars,
            Money::stars(1)
        );
    }

    fn decimal(max_units: i64, scale: u32) -> impl Strategy<Value = Decimal> {
        (0..=max_units).prop_map(move |n| Decimal::new(n, scale))
    }

    proptest! {
        #[test]
        fn never_below_cost_with_markup_and_rounding_never_undercharges(
            cost in decimal(100_000_000, 4),
            markup in decimal(10_000, 2),
            fee in decimal(1_00, 2),
            min_margin in decimal(5_00, 2),
            usd_per_star in (1i64..=100_000).prop_map(|n| Decimal::new(n, 6)),
            per_usd in (1i64..=200_000).prop_map(|n| Decimal::new(n, 3)),
        ) {
            let mut p = pricing("0", "0", "0", "1");
            p.config.markup_percent = markup;
            p.config.fixed_fee_usd = fee;
            p.config.min_margin_usd = min_margin;
            p.config.usd_per_star = usd_per_star;
            p.fiat = Some((Currency::parse("RUB").unwrap(), per_usd));
            let price = match p.price(&Money::usd(cost)) {
                Ok(price) => price,
                // Beyond what one Telegram invoice can carry: refused, never wrapped.
                Err(PricingError::OutOfRange) => return Ok(()),
                Err(e) => panic!("{e}"),
            };
            let floor = cost * (Decimal::ONE_HUNDRED + markup) / Decimal::ONE_HUNDRED;
            prop_assert!(price.price_usd >= floor);
            prop_assert!(price.price_usd >= cost + min_margin);
            // Stars: enough, and not one Star more than needed.
            let stars = price.stars.amount;
            prop_assert!(stars * usd_per_star >= price.price_usd);
            prop_assert!(stars == Decimal::ONE || (stars - Decimal::ONE) * usd_per_star < price.price_usd);
            // Fiat: enough, and not one kopeck more than needed.
            let fiat = price.fiat.unwrap().amount;
            prop_assert!(fiat >= price.price_usd * per_usd);
            prop_assert!(fiat - Decimal::new(1, 2) < price.price_usd * per_usd);
        }
    }
}
