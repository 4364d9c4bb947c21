use serde::{Deserialize, Serialize};

/// Which way money moves between a customer and a merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The customer pays the merchant.
    Collection,
    /// The merchant pays the customer (or anyone else).
    Payout,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Collection => "collection",
            Direction::Payout => "payout",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "collection" => Some(Direction::Collection),
            "payout" => Some(Direction::Payout),
            _ => None,
        }
    }
}
