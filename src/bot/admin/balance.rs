//! `/balance` and the balance watch: every enabled provider asked at once, the ones
//! that did not answer named; a threshold per provider (`balance_alert_below` in
//! kiosk.toml, in the provider's currency) alerts the admins when a balance falls
//! below it — on a schedule and after each completed order — and a provider that
//! fails several checks in a row is reported too.
//!
//! A threshold applies to each balance line of its provider except a debt (Fragment's
//! commission debt is money owed, not money to spend). An alert is sent when a line
//! goes below its threshold, not again while it stays there; after a restart the
//! watch alerts once more for a balance that is still low.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use rust_i18n::t;
use tokio::task::{JoinHandle, JoinSet};

use super::{Ctx, money_text, notify_admins, provider_name};
use crate::bot::{HandlerResult, KioskBot};
use crate::config::{Config, Language};
use crate::engine::Engine;
use crate::providers::{Balance, ProviderId, ProviderRegistry};
use crate::store::Store;

/// How long one provider may take to tell its balance.
const BALANCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed balance checks in a row before the admins hear that a provider is failing.
pub const FAILURES_BEFORE_ALERT: u32 = 3;
/// How often `kiosk run` checks the balances.
pub const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// Every enabled provider's balances, or why it gave none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalanceReport {
    pub answered: Vec<(ProviderId, Vec<Balance>)>,
    /// Providers that did not answer, with the error.
    pub silent: Vec<(ProviderId, String)>,
    /// Enabled in the configuration, with no adapter in this build.
    pub no_adapter: Vec<ProviderId>,
}

/// Asks every registered provider for its balances, all at once.
pub async fn balance_report(config: &Config, registry: &ProviderRegistry) -> BalanceReport {
    let mut calls = JoinSet::new();
    for provider in registry.all() {
        calls.spawn(async move {
            let id = provider.id();
            let answer = match tokio::time::timeout(BALANCE_TIMEOUT, provider.balances()).await {
                Ok(Ok(lines)) => Ok(lines),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no answer within {} s", BALANCE_TIMEOUT.as_secs())),
            };
            (id, answer)
        });
    }
    let mut report = BalanceReport::default();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok((id, Ok(lines))) => report.answered.push((id, lines)),
            Ok((id, Err(detail))) => report.silent.push((id, detail)),
            Err(error) => tracing::warn!(%error, "a balance call crashed"),
        }
    }
    report.answered.sort_by_key(|(id, _)| *id);
    report.silent.sort_by_key(|(id, _)| *id);
    report.no_adapter = config
        .providers
        .enabled()
        .into_iter()
        // CryptoCardy keeps no shop balance (every card has its own wallet) and sells
        // through the card desk, not an adapter: nothing to report for it.
        .filter(|id| *id != ProviderId::CryptoCardy && registry.get(*id).is_none())
        .collect();
    report
}

/// The threshold `line` is below, if any.
pub fn below_threshold(config: &Config, provider: ProviderId, line: &Balance) -> Option<Decimal> {
    let threshold = *config.providers.balance_alerts.get(&provider)?;
    let is_debt = line.label.to_ascii_lowercase().contains("debt");
    (!is_debt && line.amount.amount < threshold).then_some(threshold)
}

/// The report as the admin reads it.
pub fn report_text(lang: Language, config: &Config, report: &BalanceReport) -> String {
    let l = lang.code();
    let mut text = t!("admin.balance.title", locale = l).into_owned();
    if report.answered.is_empty() && report.silent.is_empty() && report.no_adapter.is_empty() {
        text.push('\n');
        text.push_str(&t!("admin.balance.none", locale = l));
        return text;
    }
    for (provider, lines) in &report.answered {
        text.push_str("\n\n");
        text.push_str(provider_name(*provider));
        if lines.is_empty() {
            text.push('\n');
            text.push_str(&t!("admin.balance.empty", locale = l));
        }
        for line in lines {
            text.push('\n');
            text.push_str(&t!(
                "admin.balance.line",
                locale = l,
                label = line.label,
                amount = money_text(lang, &line.amount)
            ));
            if let Some(threshold) = below_threshold(config, *provider, line) {
                text.push(' ');
                text.push_str(&t!(
                    "admin.balance.low",
                    locale = l,
                    threshold = threshold.normalize().to_string()
                ));
            }
        }
    }
    if !report.silent.is_empty() {
        text.push_str("\n\n");
        text.push_str(&t!("admin.balance.silent_title", locale = l));
        for (provider, detail) in &report.silent {
            text.push('\n');
            text.push_str(&t!(
                "admin.balance.silent",
                locale = l,
                provider = provider_name(*provider),
                detail = detail
            ));
        }
    }
    for provider in &report.no_adapter {
        text.push_str("\n\n");
        text.push_str(&t!(
            "admin.balance.no_adapter",
            locale = l,
            provider = provider_name(*provider)
        ));
    }
    text
}

pub(super) async fn command(ctx: &Ctx) -> HandlerResult {
    let report = balance_report(&ctx.shop.config, &ctx.shop.providers).await;
    ctx.say(report_text(ctx.lang, &ctx.shop.config, &report))
        .await?;
    Ok(())
}

#[derive(Debug, Default)]
struct Watched {
    /// Balance labels below their threshold at the last check.
    low: BTreeSet<String>,
    /// Failed checks in a row.
    failures: u32,
}

enum Alert {
    Low {
        provider: ProviderId,
        line: Balance,
        threshold: Decimal,
    },
    Failing {
        provider: ProviderId,
        count: u32,
        detail: String,
    },
}

/// Checks the balances and alerts the admins: the background task `kiosk run` starts.
pub struct BalanceWatch {
    bot: KioskBot,
    store: Store,
    config: Arc<Config>,
    registry: ProviderRegistry,
    watched: Mutex<HashMap<ProviderId, Watched>>,
}

impl std::fmt::Debug for BalanceWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalanceWatch")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl BalanceWatch {
    pub fn new(
        bot: KioskBot,
        store: Store,
        config: Arc<Config>,
        registry: ProviderRegistry,
    ) -> Arc<Self> {
        Arc::new(Self {
            bot,
            store,
            config,
            registry,
            watched: Mutex::new(HashMap::new()),
        })
    }

    /// One check: asks every provider and alerts the admins of balances that went
    /// below their threshold and of providers failing repeatedly.
    pub async fn check(&self) -> BalanceReport {
        let report = balance_report(&self.config, &self.registry).await;
        let alerts = self.compare(&report);
        for alert in alerts {
            notify_admins(&self.bot, &self.store, &self.config, |lang| {
                alert_text(lang, &alert)
            })
            .await;
        }
        report
    }

    fn compare(&self, report: &BalanceReport) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let Ok(mut watched) = self.watched.lock() else {
            return alerts;
        };
        for (provider, lines) in &report.answered {
            let state = watched.entry(*provider).or_default();
            state.failures = 0;
            let mut low = BTreeSet::new();
            for line in lines {
                if let Some(threshold) = below_threshold(&self.config, *provider, line) {
                    low.insert(line.label.clone());
                    if !state.low.contains(&line.label) {
                        alerts.push(Alert::Low {
                            provider: *provider,
                            line: line.clone(),
                            threshold,
                        });
                    }
                }
            }
            state.low = low;
        }
        for (provider, detail) in &report.silent {
            let state = watched.entry(*provider).or_default();
            state.failures += 1;
            if state.failures == FAILURES_BEFORE_ALERT {
                alerts.push(Alert::Failing {
                    provider: *provider,
                    count: state.failures,
                    detail: detail.clone(),
                });
            }
        }
        alerts
    }

    /// Checks now, every `every`, and after each completed order, until aborted.
    pub fn spawn(self: Arc<Self>, engine: Engine, every: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = engine.order_completed() => {}
                }
                self.check().await;
            }
        })
    }
}

fn alert_text(lang: Language, alert: &Alert) -> String {
    let l = lang.code();
    match alert {
        Alert::Low {
            provider,
            line,
            threshold,
        } => t!(
            "admin.alert.low_balance",
            locale = l,
            provider = provider_name(*provider),
            label = line.label,
            amount = money_text(lang, &line.amount),
            threshold = threshold.normalize().to_string()
        )
        .into_owned(),
        Alert::Failing {
            provider,
            count,
            detail,
        } => t!(
            "admin.alert.provider_failing",
            locale = l,
            provider = provider_name(*provider),
            count = count,
            detail = detail
        )
        .into_owned(),
    }
}
