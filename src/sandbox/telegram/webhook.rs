//! Webhook delivery, as Telegram does it once `setWebhook` names a URL: each pending
//! update is POSTed as JSON with the `X-Telegram-Bot-Api-Secret-Token` header the bot
//! chose, one at a time and in order; an update leaves the queue only when the bot
//! answers 2xx, otherwise it is tried again after a pause (Telegram: minutes; here
//! [`RETRY_AFTER`], so tests stay quick).

use std::sync::Arc;
use std::time::Duration;

use super::state::Shared;

/// The pause before an update the bot did not accept is sent again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(200);
/// How often an idle deliverer looks for a webhook and updates without a wake-up.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// Runs until the fake shuts down.
pub(crate) async fn deliver(shared: Arc<Shared>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let notified = shared.updates_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = shared.with(|st| {
            if st.webhook_url.is_empty() {
                return None;
            }
            let first = st.take_updates(None, 1, None).into_iter().next()?;
            Some((st.webhook_url.clone(), st.webhook_secret.clone(), first))
        });
        let Some((url, secret, update)) = next else {
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(IDLE_CHECK) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let id = update.get("update_id").and_then(|v| v.as_i64());
        let mut request = client.post(&url).json(&update);
        if let Some(secret) = &secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let accepted = match request.send().await {
            Ok(response) => response.status().is_success(),
            Err(error) => {
                tracing::debug!(%error, "fake telegram: webhook delivery failed");
                false
            }
        };
        if accepted {
            shared.with(|st| {
                st.webhook_deliveries += 1;
                st.updates.retain(|u| Some(i64::from(u.id)) != id);
            });
        } else {
            shared.with(|st| st.webhook_failures += 1);
            tokio::select! {
                _ = tokio::time::sleep(RETRY_AFTER) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
