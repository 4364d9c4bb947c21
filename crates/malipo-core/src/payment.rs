//! A payment's states and the one place that says which changes are legal.
//!
//! ```text
//! requires_action ⇄ pending → succeeded | failed | expired
//!        └──────────┴──────→ cancelled
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the merchant or customer: see `next_action`.
    RequiresAction,
    /// The prompt is with the customer or the rail.
    Pending,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::RequiresAction,
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Cancelled,
        PaymentStatus::Expired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub const fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded
                | PaymentStatus::Failed
                | PaymentStatus::Cancelled
                | PaymentStatus::Expired
        )
    }

    /// Whether a payment in this state may move to `next`.
    pub const fn can_become(self, next: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, next),
            (
                RequiresAction,
                RequiresAction | Pending | Failed | Cancelled | Expired
            ) | (
                Pending,
                RequiresAction | Succeeded | Failed | Cancelled | Expired
            )
        )
    }

    /// The states from which `next` may be reached.
    pub fn predecessors(next: PaymentStatus) -> Vec<PaymentStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_become(next))
            .collect()
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_never_change() {
        for from in PaymentStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in PaymentStatus::ALL {
                assert!(!from.can_become(to), "{from} → {to}");
            }
        }
        assert!(PaymentStatus::Pending.can_become(PaymentStatus::Succeeded));
        assert!(!PaymentStatus::RequiresAction.can_become(PaymentStatus::Succeeded));
        assert_eq!(
            PaymentStatus::predecessors(PaymentStatus::Succeeded),
            vec![PaymentStatus::Pending]
        );
    }
}
