//! Buy-now-pay-later installment schedules, computed exactly. No IO.
//!
//! [`quote`] turns [`PlanTerms`], a total price and a start date into a
//! [`Schedule`]: a deposit paid at checkout, then installments that repay the
//! financed principal (total − deposit) plus interest, a fee and an inflation
//! adjustment.
//!
//! # Exactness
//!
//! All amounts are integers in the currency's minor unit, so 0-decimal
//! currencies (UGX) and 2-decimal ones (KES, ZMW) follow the same code.
//! Derived amounts (a percent deposit, interest, inflation) are rounded
//! half-up to the minor unit, once. Then one rule splits every component
//! (principal, interest, fee, inflation) over the n installments:
//! floor(component / n) each, and the remainder r (0 ≤ r < n) goes one minor
//! unit each to the *first* r installments (earliest first). Hence
//! deposit + Σ installment amounts = total_payable exactly, and each
//! component's parts sum to it. With nothing financed (a 100 % deposit) there
//! are no installments, and no interest, fee or inflation.
//!
//! # Calendar
//!
//! Due date k (k = 0..n−1) is the start date advanced by
//! (first_due_after_periods + k) periods, always counted from the start date
//! (anchored, not chained): daily +1 day, weekly +7, biweekly +14, monthly +1
//! calendar month, yearly +12 months. Adding months clamps to the month's
//! last day: 31 Jan + 1 month = 28 Feb (29 in a leap year), 31 Jan + 2 months
//! = 31 Mar. Dates are the merchant's local calendar dates.
//!
//! [`Length`], [`Interest`] and [`Inflation`] document how a plan's length,
//! interest and inflation are computed.

pub mod calendar;
mod delinquency;
mod payment;
mod schedule;
mod terms;

pub use calendar::{add_months, due_date};
pub use delinquency::DelinquencyBucket;
pub use payment::{Allocation, allocate_payment};
pub use schedule::{Schedule, ScheduledInstallment, quote};
pub use terms::{
    BASIS_POINTS_ONE, Deposit, Frequency, INSTALLMENTS_MAX, INTEREST_BASIS_POINTS_MAX, Inflation,
    Interest, Length, MONTHS_MAX, PlanTerms, TermsError,
};
