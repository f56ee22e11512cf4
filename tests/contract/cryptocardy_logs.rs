//! The whole card flow with every log line captured (tracing at TRACE, `log` records of
//! the HTTP stack bridged in): no PAN, CVV, seed or 3-D Secure code in any of them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kiosk::cards::CardWebhook;
use kiosk::secret::Secret;

use crate::cryptocardy_cards::{key, setup, webhook_receiver, whole_flow};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `token` stands alone in `line` (not inside a longer run of digits).
fn has_token(line: &str, token: &str) -> bool {
    line.split(|c: char| !c.is_ascii_digit())
        .any(|t| t == token)
}

// The subscriber is the process-wide default, not a scoped one: a scoped subscriber
// misses events whose callsites another test thread registered first (tracing caches
// each callsite's interest), and a leak hidden that way would pass unseen. So every
// test of this binary logs into the capture; only this flow's secrets are looked for.
#[tokio::test]
async fn no_pan_cvv_seed_or_code_reaches_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    let _ = tracing_log::LogTracer::init();

    let slot = Arc::new(tokio::sync::OnceCell::new());
    let (url, _rx) = webhook_receiver(slot.clone()).await;
    let s = setup(
        Some(key()),
        Some(CardWebhook {
            url,
            secret: Secret::new("whsec_log_test"),
        }),
    )
    .await;
    slot.set(Arc::new(s.service.clone())).expect("set once");
    let secrets = whole_flow(&s).await;
    // Let the last webhook deliveries land (and log) before reading.
    for _ in 0..20 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    // The capture works: the flow's own lines are there.
    for expected in [
        "issuing a card",
        "card issued",
        "card details shown",
        "card terminated",
        "cryptocardy answer",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.lines().count() > 30, "{text}");
    let grouped: String = secrets
        .pan
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    for line in text.lines() {
        assert!(!line.contains(&secrets.seed), "seed in: {line}");
        assert!(!line.contains(&secrets.pan), "PAN in: {line}");
        assert!(!line.contains(&grouped), "PAN in: {line}");
        assert!(!has_token(line, &secrets.otp), "3-D Secure code in: {line}");
        // A three-digit CVV could match a status code or a count by chance: a leak
        // shows as a value next to its name or quoted.
        let cvv_leak = has_token(line, &secrets.cvv)
            && (line.to_ascii_lowercase().contains("cvv")
                || line.contains(&format!("\"{}\"", secrets.cvv)));
        assert!(!cvv_leak, "CVV in: {line}");
    }
}
