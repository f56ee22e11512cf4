//! Orders and their states. Every status change in the shop goes through
//! [`OrderStatus::check_transition`]; the store applies it atomically.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Our order number, shown to buyers as `#123`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub i64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// ```text
/// awaiting_payment → paid → submitted → processing → completed
/// awaiting_payment → expired
/// awaiting_payment → needs_attention    (buyer-paid: creating its provider order
///                                        had an unknown outcome)
/// paid | submitted | processing → failed → refunded
/// failed → submitted                     (rerouted to the next provider)
/// paid | submitted | processing | failed → needs_attention   (ambiguous answer)
/// needs_attention → submitted | completed | failed | refunded (admin only)
/// paid | completed → refunded                                (admin only)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    AwaitingPayment,
    Paid,
    Submitted,
    Processing,
    Completed,
    Expired,
    Failed,
    Refunded,
    NeedsAttention,
}

/// Who moves an order: recorded in `order_events.actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A background component of the shop: `engine`, `poller`, `webhook:fazercards`, …
    System(String),
    Buyer(i64),
    Admin(i64),
}

impl Actor {
    pub fn engine() -> Self {
        Self::System("engine".to_owned())
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin(_))
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System(name) => f.write_str(name),
            Self::Buyer(id) => write!(f, "buyer:{id}"),
            Self::Admin(id) => write!(f, "admin:{id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an order cannot go from {from} to {to}")]
    Illegal { from: OrderStatus, to: OrderStatus },
    #[error("only an admin may move an order from {from} to {to}")]
    AdminOnly { from: OrderStatus, to: OrderStatus },
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        Self::AwaitingPayment,
        Self::Paid,
        Self::Submitted,
        Self::Processing,
        Self::Completed,
        Self::Expired,
        Self::Failed,
        Self::Refunded,
        Self::NeedsAttention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::Paid => "paid",
            Self::Submitted => "submitted",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::NeedsAttention => "needs_attention",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Nothing more will happen to the order.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Expired | Self::Refunded)
    }

    /// The buyer's money is with the shop and the order is not settled: the engine
    /// (or an admin) still owes the buyer goods or a refund.
    pub fn owes_buyer(self) -> bool {
        matches!(
            self,
            Self::Paid | Self::Submitted | Self::Processing | Self::Failed | Self::NeedsAttention
        )
    }

    /// The one place that says which status changes are legal, and who may make them.
    pub fn check_transition(self, to: OrderStatus, actor: &Actor) -> Result<(), TransitionError> {
        use OrderStatus::*;
        let legal = matches!(
            (self, to),
            (AwaitingPayment, Paid | Expired)
                // A buyer-paid (crypto) order whose provider order may or may not exist.
                | (AwaitingPayment, NeedsAttention)
                | (Paid, Submitted | Failed | NeedsAttention | Refunded)
                | (Submitted, Processing | Completed | Failed | NeedsAttention)
                | (Processing, Completed | Failed | NeedsAttention)
                | (Failed, Refunded | Submitted | NeedsAttention)
                | (NeedsAttention, Submitted | Completed | Failed | Refunded)
                | (Completed, Refunded)
        );
        if !legal {
            return Err(TransitionError::Illegal { from: self, to });
        }
        let admin_only = matches!(
            (self, to),
            (NeedsAttention, _) | (Completed, Refunded) | (Paid, Refunded)
        );
        if admin_only && !actor.is_admin() {
            return Err(TransitionError::AdminOnly { from: self, to });
        }
        Ok(())
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    const LEGAL_FOR_ENGINE: &[(OrderStatus, OrderStatus)] = &[
        (AwaitingPayment, Paid),
        (AwaitingPayment, Expired),
        (AwaitingPayment, NeedsAttention),
        (Paid, Submitted),
        (Paid, Failed),
        (Paid, NeedsAttention),
        (Submitted, Processing),
        (Submitted, Completed),
        (Submitted, Failed),
        (Submitted, NeedsAttention),
        (Processing, Completed),
        (Processing, Failed),
        (Processing, NeedsAttention),
        (Failed, Refunded),
        (Failed, Submitted),
        (Failed, NeedsAttention),
    ];

    const ADMIN_ONLY: &[(OrderStatus, OrderStatus)] = &[
        (NeedsAttention, Submitted),
        (NeedsAttention, Completed),
        (NeedsAttention, Failed),
        (NeedsAttention, Refunded),
        (Completed, Refunded),
        (Paid, Refunded),
    ];

    #[test]
    fn every_pair_is_classified_exactly() {
        let engine = Actor::engine();
        let admin = Actor::Admin(1);
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let for_engine = from.check_transition(to, &engine);
                let for_admin = from.check_transition(to, &admin);
                if LEGAL_FOR_ENGINE.contains(&(from, to)) {
                    assert_eq!(for_engine, Ok(()), "{from} → {to} for the engine");
                    assert_eq!(for_admin, Ok(()), "{from} → {to} for an admin");
                } else if ADMIN_ONLY.contains(&(from, to)) {
                    assert_eq!(
                        for_engine,
                        Err(TransitionError::AdminOnly { from, to }),
                        "{from} → {to} must be refused to the engine"
                    );
                    assert_eq!(for_admin, Ok(()), "{from} → {to} for an admin");
                } else {
                    let illegal = Err(TransitionError::Illegal { from, to });
                    assert_eq!(for_engine, illegal, "{from} → {to}");
                    assert_eq!(for_admin, illegal, "{from} → {to} even for an admin");
                }
            }
        }
    }

    #[test]
    fn terminal_states_have_no_exit_but_an_admin_refund_of_completed() {
        for from in OrderStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in OrderStatus::ALL {
                let ok = from.check_transition(to, &Actor::Admin(1)).is_ok();
                assert_eq!(ok, from == Completed && to == Refunded, "{from} → {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }

    #[test]
    fn actors_render_for_the_event_log() {
        assert_eq!(Actor::engine().to_string(), "engine");
        assert_eq!(Actor::Buyer(7).to_string(), "buyer:7");
        assert_eq!(Actor::Admin(9).to_string(), "admin:9");
    }
}
