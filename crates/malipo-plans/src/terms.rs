//! A plan's terms and the errors that refuse them.

use serde::{Deserialize, Serialize};

/// Basis points in one whole (100 %).
pub const BASIS_POINTS_ONE: u32 = 10_000;
pub const INSTALLMENTS_MAX: u32 = 1_000;
pub const MONTHS_MAX: u32 = 120;
pub const INTEREST_BASIS_POINTS_MAX: u32 = 100_000;

/// How often an installment falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Daily,
    Weekly,
    Biweekly,
    Monthly,
    Yearly,
}

impl Frequency {
    pub const ALL: &'static [Frequency] = &[
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Biweekly,
        Frequency::Monthly,
        Frequency::Yearly,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Biweekly => "biweekly",
            Frequency::Monthly => "monthly",
            Frequency::Yearly => "yearly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.as_str() == text)
    }
}

/// What the customer pays at checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deposit {
    /// A share of the total, rounded half-up to the minor unit: 2500 = 25 %.
    Percent { basis_points: u32 },
    /// A fixed amount in minor units, at most the total.
    Amount { amount_minor: i64 },
}

/// How long the plan runs.
///
/// `Months` (as Nunua Sasa sends it) becomes an installment count by the
/// frequency: monthly → `months`; yearly → max(1, months / 12); daily → the
/// calendar days from the start date to start + `months` (calendar-month
/// add, clamped); weekly → max(1, days / 7); biweekly → max(1, days / 14).
/// Divisions round down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Length {
    Installments { count: u32 },
    Months { months: u32 },
}

/// The charge for financing, on the financed principal (total − deposit),
/// rounded half-up to the minor unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interest {
    #[default]
    None,
    /// principal × bps / 10000 × the number of installments.
    FlatPerPeriod { basis_points: u32 },
    /// principal × bps / 10000, once for the whole plan.
    Total { basis_points: u32 },
}

/// An annual inflation adjustment, pro rata over the plan: principal ×
/// bps / 10000 × plan_days / 365, where plan_days runs from the start date to
/// the last due date; rounded half-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflation {
    pub annual_basis_points: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub deposit: Deposit,
    pub length: Length,
    pub frequency: Frequency,
    /// 0: the first installment is due on the start date itself; 1: one
    /// period after it.
    #[serde(default = "one_period")]
    pub first_due_after_periods: u32,
    #[serde(default)]
    pub interest: Interest,
    /// A fixed fee, financed with the plan: the installments repay it.
    #[serde(default)]
    pub fee_minor: i64,
    #[serde(default)]
    pub inflation: Option<Inflation>,
}

fn one_period() -> u32 {
    1
}

impl PlanTerms {
    /// The built-in `pos_standard` product: 25 % down, then three
    /// installments, the first one period after checkout, no interest, no
    /// fee. Weekly by default; monthly is also offered.
    pub const fn pos_standard(frequency: Frequency) -> Self {
        Self {
            deposit: Deposit::Percent {
                basis_points: 2_500,
            },
            length: Length::Installments { count: 3 },
            frequency,
            first_due_after_periods: 1,
            interest: Interest::None,
            fee_minor: 0,
            inflation: None,
        }
    }
}

impl Default for PlanTerms {
    fn default() -> Self {
        Self::pos_standard(Frequency::Weekly)
    }
}

/// Why terms (with a total and start date) cannot make a schedule. Each
/// names its field by a stable path, for API error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("total: must be positive, got {total_minor}")]
    TotalNotPositive { total_minor: i64 },
    #[error("deposit.basis_points: at most 10000 (100 %), got {basis_points}")]
    DepositPercentTooHigh { basis_points: u32 },
    #[error("deposit.amount_minor: must be 0 to the total {total_minor}, got {amount_minor}")]
    DepositAmountOutOfRange { amount_minor: i64, total_minor: i64 },
    #[error("length.count: must be 1 to 1000 installments, got {count}")]
    InstallmentCountOutOfRange { count: u32 },
    #[error("length.months: must be 1 to 120 months, got {months}")]
    MonthsOutOfRange { months: u32 },
    #[error("interest.basis_points: at most 100000 (1000 %), got {basis_points}")]
    InterestTooHigh { basis_points: u32 },
    #[error("fee_minor: must not be negative, got {fee_minor}")]
    FeeNegative { fee_minor: i64 },
    #[error("{field}: a due date falls outside the calendar")]
    DateOutOfRange { field: &'static str },
    #[error("{field}: amount overflow")]
    Overflow { field: &'static str },
}

impl TermsError {
    /// The offending field's path, e.g. `deposit.basis_points`.
    pub fn field(&self) -> &'static str {
        match self {
            TermsError::TotalNotPositive { .. } => "total",
            TermsError::DepositPercentTooHigh { .. } => "deposit.basis_points",
            TermsError::DepositAmountOutOfRange { .. } => "deposit.amount_minor",
            TermsError::InstallmentCountOutOfRange { .. } => "length.count",
            TermsError::MonthsOutOfRange { .. } => "length.months",
            TermsError::InterestTooHigh { .. } => "interest.basis_points",
            TermsError::FeeNegative { .. } => "fee_minor",
            TermsError::DateOutOfRange { field } | TermsError::Overflow { field } => field,
        }
    }
}

impl PlanTerms {
    /// Checks every bound that does not depend on the calendar.
    pub(crate) fn validate(&self, total_minor: i64) -> Result<(), TermsError> {
        if total_minor <= 0 {
            return Err(TermsError::TotalNotPositive { total_minor });
        }
        match self.deposit {
            Deposit::Percent { basis_points } if basis_points > BASIS_POINTS_ONE => {
                return Err(TermsError::DepositPercentTooHigh { basis_points });
            }
            Deposit::Amount { amount_minor } if !(0..=total_minor).contains(&amount_minor) => {
                return Err(TermsError::DepositAmountOutOfRange {
                    amount_minor,
                    total_minor,
                });
            }
            _ => {}
        }
        match self.length {
            Length::Installments { count } if !(1..=INSTALLMENTS_MAX).contains(&count) => {
                return Err(TermsError::InstallmentCountOutOfRange { count });
            }
            Length::Months { months } if !(1..=MONTHS_MAX).contains(&months) => {
                return Err(TermsError::MonthsOutOfRange { months });
            }
            _ => {}
        }
        match self.interest {
            Interest::FlatPerPeriod { basis_points } | Interest::Total { basis_points }
                if basis_points > INTEREST_BASIS_POINTS_MAX =>
            {
                return Err(TermsError::InterestTooHigh { basis_points });
            }
            _ => {}
        }
        if self.fee_minor < 0 {
            return Err(TermsError::FeeNegative {
                fee_minor: self.fee_minor,
            });
        }
        Ok(())
    }
}
