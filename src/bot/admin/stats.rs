//! `/stats [today|7d|30d]`: the orders created in the period, revenue in Stars and
//! fiat (completed buyer orders, as paid), the provider cost of those orders, the
//! margin, by family and by provider, and the top products. Revenue and cost meet in
//! USD: Stars at `pricing.usd_per_star`, fiat at the configured rate, provider costs
//! through `[pricing.usd_value]`. Decimal throughout.
//!
//! An admin's own purchases (/stars, /premium) earned nothing: they are counted apart,
//! with their cost.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use rust_i18n::t;

use super::{Ctx, money_text, provider_name};
use crate::bot::HandlerResult;
use crate::cards::CardState;
use crate::config::{Config, Language};
use crate::domain::{Currency, Money, OrderStatus, ProductFamily};
use crate::pricing::Pricing;
use crate::providers::{Checkout, ProviderId};
use crate::store::StatsOrder;

/// Products listed under "top products".
const TOP: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Since midnight UTC.
    Today,
    Days7,
    Days30,
}

impl Period {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "today" => Some(Self::Today),
            "7d" => Some(Self::Days7),
            "30d" => Some(Self::Days30),
            _ => None,
        }
    }

    pub fn since(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Today => now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map(|midnight| midnight.and_utc())
                .unwrap_or(now),
            Self::Days7 => now - Duration::days(7),
            Self::Days30 => now - Duration::days(30),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Today => "admin.stats.today",
            Self::Days7 => "admin.stats.days7",
            Self::Days30 => "admin.stats.days30",
        }
    }
}

/// Completed orders of one family or provider, in USD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub orders: u32,
    pub revenue_usd: Decimal,
    pub cost_usd: Decimal,
}

impl Line {
    pub fn margin_usd(&self) -> Decimal {
        self.revenue_usd - self.cost_usd
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub orders: u32,
    pub by_status: BTreeMap<&'static str, u32>,
    /// Completed buyer orders, as paid, per currency (Stars, fiat).
    pub revenue: BTreeMap<Currency, Decimal>,
    /// Completed buyer orders.
    pub total: Line,
    pub by_family: BTreeMap<ProductFamily, Line>,
    pub by_provider: BTreeMap<ProviderId, Line>,
    /// (product title, completed orders), most first.
    pub top: Vec<(String, u32)>,
    pub admin_orders: u32,
    pub admin_cost_usd: Decimal,
    /// Completed crypto orders (Cryptorefills): the buyer paid the provider directly, so
    /// they are no revenue of the shop and stay out of the sums.
    pub buyer_paid_orders: u32,
    /// Orders whose price or cost could not be converted to USD (left out of the sums).
    pub unconverted: u32,
    /// Virtual cards, when the shop offers them.
    pub cards: Option<CardStats>,
}

/// Virtual cards: issued in the period by the state they are in now, and live overall.
/// The buyer funds a card at the provider, so cards bring no revenue to the sums above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardStats {
    pub issued: Vec<(CardState, i64)>,
    /// Waiting for funding, active or frozen, whenever issued.
    pub live: i64,
}

impl CardStats {
    pub fn from_counts(issued: Vec<(CardState, i64)>, all: &[(CardState, i64)]) -> Self {
        let mut issued = issued;
        issued.sort_by_key(|(state, _)| CardState::ALL.iter().position(|s| s == state));
        let live = all
            .iter()
            .filter(|(state, _)| state.is_open())
            .map(|(_, n)| n)
            .sum();
        Self { issued, live }
    }
}

/// What a buyer paid, in USD.
fn price_in_usd(config: &Config, price: &Money) -> Option<Decimal> {
    if price.currency.is_stars() {
        return price.amount.checked_mul(config.pricing.usd_per_star);
    }
    let fiat = config.fiat.as_ref()?;
    (fiat.currency == price.currency && !fiat.per_usd.is_zero())
        .then(|| price.amount.checked_div(fiat.per_usd))
        .flatten()
}

impl Stats {
    pub fn compute(config: &Config, pricing: &Pricing, orders: &[StatsOrder]) -> Stats {
        let mut stats = Stats::default();
        let mut products: BTreeMap<String, u32> = BTreeMap::new();
        for order in orders {
            stats.orders += 1;
            *stats.by_status.entry(order.status.as_str()).or_default() += 1;
            if order.status != OrderStatus::Completed {
                continue;
            }
            let cost_usd = pricing.cost_in_usd(&order.cost).ok();
            if order.admin_id.is_some() {
                stats.admin_orders += 1;
                match cost_usd {
                    Some(cost) => stats.admin_cost_usd += cost,
                    None => stats.unconverted += 1,
                }
                continue;
            }
            if order.provider.checkout() == Checkout::BuyerPaid {
                stats.buyer_paid_orders += 1;
                *products.entry(order.product_title.clone()).or_default() += 1;
                continue;
            }
            *stats
                .revenue
                .entry(order.price.currency.clone())
                .or_default() += order.price.amount;
            *products.entry(order.product_title.clone()).or_default() += 1;
            let (Some(cost_usd), Some(revenue_usd)) =
                (cost_usd, price_in_usd(config, &order.price))
            else {
                stats.unconverted += 1;
                continue;
            };
            for line in [
                &mut stats.total,
                stats.by_family.entry(order.family).or_default(),
                stats.by_provider.entry(order.provider).or_default(),
            ] {
                line.orders += 1;
                line.revenue_usd += revenue_usd;
                line.cost_usd += cost_usd;
            }
        }
        let mut top: Vec<(String, u32)> = products.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP);
        stats.top = top;
        stats
    }

    pub fn text(&self, lang: Language, period: Period, since: DateTime<Utc>) -> String {
        let l = lang.code();
        let usd = |d: Decimal| d.round_dp(2).to_string();
        let mut text = t!(
            "admin.stats.title",
            locale = l,
            period = t!(period.key(), locale = l),
            since = since.format("%Y-%m-%d %H:%M UTC").to_string()
        )
        .into_owned();
        let statuses = self
            .by_status
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        text.push('\n');
        text.push_str(&t!(
            "admin.stats.orders",
            locale = l,
            count = self.orders,
            statuses = if statuses.is_empty() {
                "—".to_owned()
            } else {
                statuses
            }
        ));
        let revenue = self
            .revenue
            .iter()
            .map(|(currency, amount)| money_text(lang, &Money::new(*amount, currency.clone())))
            .collect::<Vec<_>>()
            .join(", ");
        text.push('\n');
        text.push_str(&t!(
            "admin.stats.revenue",
            locale = l,
            revenue = if revenue.is_empty() {
                "—".to_owned()
            } else {
                revenue
            },
            usd = usd(self.total.revenue_usd)
        ));
        text.push('\n');
        text.push_str(&t!(
            "admin.stats.cost",
            locale = l,
            usd = usd(self.total.cost_usd)
        ));
        text.push('\n');
        text.push_str(&t!(
            "admin.stats.margin",
            locale = l,
            usd = usd(self.total.margin_usd())
        ));
        let line_text = |name: &str, line: &Line| {
            t!(
                "admin.stats.line",
                locale = l,
                name = name,
                orders = line.orders,
                revenue = usd(line.revenue_usd),
                cost = usd(line.cost_usd),
                margin = usd(line.margin_usd())
            )
            .into_owned()
        };
        if !self.by_family.is_empty() {
            text.push_str("\n\n");
            text.push_str(&t!("admin.stats.by_family", locale = l));
            for (family, line) in &self.by_family {
                text.push('\n');
                text.push_str(&line_text(family.as_str(), line));
            }
        }
        if !self.by_provider.is_empty() {
            text.push_str("\n\n");
            text.push_str(&t!("admin.stats.by_provider", locale = l));
            for (provider, line) in &self.by_provider {
                text.push('\n');
                text.push_str(&line_text(provider_name(*provider), line));
            }
        }
        if !self.top.is_empty() {
            text.push_str("\n\n");
            text.push_str(&t!("admin.stats.top", locale = l));
            for (rank, (title, count)) in self.top.iter().enumerate() {
                text.push('\n');
                text.push_str(&t!(
                    "admin.stats.top_line",
                    locale = l,
                    rank = rank + 1,
                    title = title,
                    count = count
                ));
            }
        }
        if self.admin_orders > 0 {
            text.push_str("\n\n");
            text.push_str(&t!(
                "admin.stats.admin_orders",
                locale = l,
                count = self.admin_orders,
                usd = usd(self.admin_cost_usd)
            ));
        }
        if self.buyer_paid_orders > 0 {
            text.push_str("\n\n");
            text.push_str(&t!(
                "admin.stats.buyer_paid_orders",
                locale = l,
                count = self.buyer_paid_orders
            ));
        }
        if let Some(cards) = &self.cards {
            let count: i64 = cards.issued.iter().map(|(_, n)| n).sum();
            let states = cards
                .issued
                .iter()
                .map(|(state, n)| format!("{state} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            text.push_str("\n\n");
            text.push_str(&t!(
                "admin.stats.cards",
                locale = l,
                count = count,
                states = if states.is_empty() {
                    "—".to_owned()
                } else {
                    states
                },
                live = cards.live
            ));
        }
        if self.unconverted > 0 {
            text.push_str("\n\n");
            text.push_str(&t!(
                "admin.stats.unconverted",
                locale = l,
                count = self.unconverted
            ));
        }
        text
    }
}

pub(super) async fn command(ctx: &Ctx, args: &str) -> HandlerResult {
    let Some(period) = Period::parse(args) else {
        ctx.say(t!("admin.usage.stats", locale = ctx.l())).await?;
        return Ok(());
    };
    let since = period.since(Utc::now());
    let orders = ctx.shop.store.orders_created_since(since).await?;
    let mut stats = Stats::compute(&ctx.shop.config, &ctx.shop.pricing, &orders);
    if ctx.shop.cards.is_some() {
        let store = &ctx.shop.store;
        stats.cards = Some(CardStats::from_counts(
            store.card_state_counts(Some(since)).await?,
            &store.card_state_counts(None).await?,
        ));
    }
    ctx.say(stats.text(ctx.lang, period, since)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn order(
        family: ProductFamily,
        provider: ProviderId,
        title: &str,
        status: OrderStatus,
        cost: Money,
        price: Money,
        admin: Option<i64>,
    ) -> StatsOrder {
        StatsOrder {
            family,
            provider,
            product_title: title.to_owned(),
            status,
            cost,
            price,
            admin_id: admin,
        }
    }

    #[test]
    fn revenue_cost_and_margin_add_up_exactly() {
        let toml = "[pricing]\nusd_per_star = \"0.013\"\n[pricing.usd_value]\nTON = \"3.00\"\n";
        let config =
            Config::from_parts(&Default::default(), Path::new("kiosk.toml"), Some(toml)).unwrap();
        let pricing = Pricing::new(config.pricing.clone(), config.fiat.as_ref());
        let ton = |s: &str| Money::parse(s, "TON").unwrap();
        let orders = vec![
            order(
                ProductFamily::TelegramStars,
                ProviderId::Fragment,
                "Telegram Stars",
                OrderStatus::Completed,
                ton("1.55"),
                Money::stars(500),
                None,
            ),
            order(
                ProductFamily::TelegramStars,
                ProviderId::Fragment,
                "Telegram Stars",
                OrderStatus::Completed,
                ton("0.775"),
                Money::stars(250),
                None,
            ),
            order(
                ProductFamily::GiftCard,
                ProviderId::Agent,
                "Gift card",
                OrderStatus::Completed,
                Money::usd(Decimal::new(10, 0)),
                Money::stars(1000),
                None,
            ),
            order(
                ProductFamily::GiftCard,
                ProviderId::Agent,
                "Gift card",
                OrderStatus::Refunded,
                Money::usd(Decimal::new(10, 0)),
                Money::stars(1000),
                None,
            ),
            order(
                ProductFamily::TelegramStars,
                ProviderId::Fragment,
                "Telegram Stars × 100",
                OrderStatus::Completed,
                ton("1.55"),
                ton("1.55"),
                Some(9),
            ),
            // Paid by the buyer to Cryptorefills in USDC: not the shop's revenue.
            order(
                ProductFamily::MobileTopup,
                ProviderId::Cryptorefills,
                "Mobile top-up",
                OrderStatus::Completed,
                Money::parse("10.20", "USDC").unwrap(),
                Money::parse("10.20", "USDC").unwrap(),
                None,
            ),
        ];
        let stats = Stats::compute(&config, &pricing, &orders);
        assert_eq!(stats.orders, 6);
        assert_eq!(stats.by_status["completed"], 5);
        assert_eq!(stats.buyer_paid_orders, 1);
        assert_eq!(stats.revenue.len(), 1, "{:?}", stats.revenue);
        assert_eq!(stats.by_status["refunded"], 1);
        assert_eq!(stats.revenue[&Currency::stars()], Decimal::new(1750, 0));
        // 1750 Stars × 0.013 = 22.75 USD; cost 4.65 + 2.325 + 10 = 16.975 USD.
        assert_eq!(stats.total.revenue_usd, Decimal::new(2275, 2));
        assert_eq!(stats.total.cost_usd, Decimal::new(16975, 3));
        assert_eq!(stats.total.margin_usd(), Decimal::new(5775, 3));
        let stars = &stats.by_family[&ProductFamily::TelegramStars];
        assert_eq!(stars.orders, 2);
        assert_eq!(stars.revenue_usd, Decimal::new(975, 2));
        assert_eq!(stats.by_provider[&ProviderId::Agent].orders, 1);
        assert_eq!(stats.top[0], ("Telegram Stars".to_owned(), 2));
        assert_eq!(stats.admin_orders, 1);
        assert_eq!(stats.admin_cost_usd, Decimal::new(465, 2));
        assert_eq!(stats.unconverted, 0);
    }

    #[test]
    fn cards_are_counted_by_state_and_live_ones_overall() {
        let cards = CardStats::from_counts(
            vec![(CardState::Active, 2), (CardState::PendingTopUp, 1)],
            &[
                (CardState::Active, 5),
                (CardState::Frozen, 1),
                (CardState::PendingTopUp, 1),
                (CardState::Terminated, 4),
                (CardState::IssueFailed, 2),
            ],
        );
        assert_eq!(cards.live, 7);
        let stats = Stats {
            cards: Some(cards),
            ..Stats::default()
        };
        let since = DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let text = stats.text(Language::En, Period::Today, since);
        assert!(
            text.contains("Virtual cards issued: 3 (pending_top_up 1, active 2); live now: 7"),
            "{text}"
        );
        let ru = stats.text(Language::Ru, Period::Today, since);
        assert!(ru.contains("pending_top_up 1, active 2"), "{ru}");
        assert!(
            !Stats::default()
                .text(Language::En, Period::Today, since)
                .contains("Virtual cards")
        );
    }

    #[test]
    fn periods_parse_and_start_where_they_say() {
        assert_eq!(Period::parse(""), Some(Period::Today));
        assert_eq!(Period::parse("7D"), Some(Period::Days7));
        assert_eq!(Period::parse("30d"), Some(Period::Days30));
        assert_eq!(Period::parse("week"), None);
        let now = DateTime::parse_from_rfc3339("2026-03-10T15:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Period::Today.since(now).to_rfc3339(),
            "2026-03-10T00:00:00+00:00"
        );
        assert_eq!(Period::Days7.since(now), now - Duration::days(7));
    }
}
