//! Applying a payment (on time, early or extra) to a plan's installments.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// What the payment pays off each installment, in the order given.
    pub per_installment: Vec<i64>,
    /// What is left once every installment is paid off.
    pub unapplied_minor: i64,
}

/// Applies `amount_minor` to the oldest installments first: each is paid off
/// in full before the next gets anything, and none gets more than it still
/// owes. `outstanding` is the remaining amount per installment, in schedule
/// order; negative entries count as nothing owed. A non-positive amount
/// applies nothing and comes back whole as unapplied.
pub fn allocate_payment(outstanding: &[i64], amount_minor: i64) -> Allocation {
    let mut remaining = amount_minor.max(0);
    let per_installment = outstanding
        .iter()
        .map(|&owed| {
            let applied = remaining.min(owed.max(0));
            remaining -= applied;
            applied
        })
        .collect();
    Allocation {
        per_installment,
        unapplied_minor: if amount_minor > 0 {
            remaining
        } else {
            amount_minor
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pays_the_oldest_first_and_returns_the_rest() {
        let allocation = allocate_payment(&[0, 300, 300, 300], 500);
        assert_eq!(allocation.per_installment, [0, 300, 200, 0]);
        assert_eq!(allocation.unapplied_minor, 0);
        let over = allocate_payment(&[100, 100], 250);
        assert_eq!(over.per_installment, [100, 100]);
        assert_eq!(over.unapplied_minor, 50);
        let nothing = allocate_payment(&[100, -5], -7);
        assert_eq!(nothing.per_installment, [0, 0]);
        assert_eq!(nothing.unapplied_minor, -7);
        assert_eq!(allocate_payment(&[], 10).unapplied_minor, 10);
    }
}
