//! Properties of every schedule and payment allocation, over arbitrary terms.

use malipo_core::{Currency, Money};
use malipo_plans::{
    Deposit, Frequency, Inflation, Interest, Length, PlanTerms, Schedule, TermsError,
    allocate_payment, quote,
};
use proptest::prelude::*;
use proptest::sample::select;
use time::Date;
use time::macros::date;

fn currency() -> impl Strategy<Value = Currency> {
    let usable: Vec<Currency> = Currency::ALL
        .iter()
        .copied()
        .filter(|c| matches!(c.exponent(), 0 | 2))
        .collect();
    select(usable)
}

fn start_between(first: Date, last: Date) -> impl Strategy<Value = Date> {
    (first.to_julian_day()..=last.to_julian_day())
        .prop_map(|day| Date::from_julian_day(day).expect("in range"))
}

/// A total with a deposit that fits it.
fn total_and_deposit() -> impl Strategy<Value = (i64, Deposit)> {
    prop_oneof![1i64..=100, 1i64..=1_000_000_000_000].prop_flat_map(|total| {
        let deposit = prop_oneof![
            (0u32..=10_000).prop_map(|basis_points| Deposit::Percent { basis_points }),
            Just(Deposit::Percent {
                basis_points: 10_000
            }),
            (0..=total).prop_map(|amount_minor| Deposit::Amount { amount_minor }),
            Just(Deposit::Amount {
                amount_minor: total
            }),
        ];
        (Just(total), deposit)
    })
}

fn valid_terms(deposit: Deposit) -> impl Strategy<Value = PlanTerms> {
    let length = prop_oneof![
        (1u32..=1_000).prop_map(|count| Length::Installments { count }),
        (1u32..=120).prop_map(|months| Length::Months { months }),
    ];
    let interest = prop_oneof![
        Just(Interest::None),
        (0u32..=100_000).prop_map(|basis_points| Interest::FlatPerPeriod { basis_points }),
        (0u32..=100_000).prop_map(|basis_points| Interest::Total { basis_points }),
    ];
    let fee = prop_oneof![Just(0i64), 0i64..=1_000_000_000_000];
    let inflation =
        proptest::option::of((0u32..=100_000).prop_map(|annual_basis_points| Inflation {
            annual_basis_points,
        }));
    (
        length,
        select(Frequency::ALL),
        0u32..=3,
        interest,
        fee,
        inflation,
    )
        .prop_map(
            move |(length, frequency, first_due_after_periods, interest, fee_minor, inflation)| {
                PlanTerms {
                    deposit,
                    length,
                    frequency,
                    first_due_after_periods,
                    interest,
                    fee_minor,
                    inflation,
                }
            },
        )
}

/// Any terms at all, valid or not, biased towards the bounds.
fn wild_terms() -> impl Strategy<Value = PlanTerms> {
    let deposit = prop_oneof![
        any::<u32>().prop_map(|basis_points| Deposit::Percent { basis_points }),
        (9_990u32..=10_010).prop_map(|basis_points| Deposit::Percent { basis_points }),
        any::<i64>().prop_map(|amount_minor| Deposit::Amount { amount_minor }),
        (-5i64..=1_000).prop_map(|amount_minor| Deposit::Amount { amount_minor }),
    ];
    let length = prop_oneof![
        any::<u32>().prop_map(|count| Length::Installments { count }),
        (0u32..=1_001).prop_map(|count| Length::Installments { count }),
        any::<u32>().prop_map(|months| Length::Months { months }),
        (0u32..=121).prop_map(|months| Length::Months { months }),
    ];
    let interest = prop_oneof![
        Just(Interest::None),
        any::<u32>().prop_map(|basis_points| Interest::FlatPerPeriod { basis_points }),
        any::<u32>().prop_map(|basis_points| Interest::Total { basis_points }),
        (99_990u32..=100_010).prop_map(|basis_points| Interest::Total { basis_points }),
    ];
    let first_due = prop_oneof![0u32..=3, any::<u32>()];
    (
        deposit,
        length,
        select(Frequency::ALL),
        first_due,
        interest,
        prop_oneof![0i64..=1_000, any::<i64>()],
        proptest::option::of(any::<u32>().prop_map(|annual_basis_points| Inflation {
            annual_basis_points,
        })),
    )
        .prop_map(
            |(
                deposit,
                length,
                frequency,
                first_due_after_periods,
                interest,
                fee_minor,
                inflation,
            )| {
                PlanTerms {
                    deposit,
                    length,
                    frequency,
                    first_due_after_periods,
                    interest,
                    fee_minor,
                    inflation,
                }
            },
        )
}

/// Every invariant a schedule promises.
fn check(schedule: &Schedule, total: Money, start: Date) -> Result<(), TestCaseError> {
    prop_assert_eq!(schedule.currency, total.currency);
    prop_assert_eq!(schedule.total_minor, total.amount_minor);
    prop_assert_eq!(
        schedule.financed_minor,
        schedule.total_minor - schedule.deposit_minor
    );
    prop_assert_eq!(
        i128::from(schedule.total_payable_minor),
        i128::from(schedule.total_minor)
            + i128::from(schedule.interest_minor)
            + i128::from(schedule.fee_minor)
            + i128::from(schedule.inflation_minor)
    );
    let paid: i128 = schedule
        .installments
        .iter()
        .map(|i| i128::from(i.amount_minor))
        .sum();
    prop_assert_eq!(
        i128::from(schedule.deposit_minor) + paid,
        i128::from(schedule.total_payable_minor)
    );
    prop_assert_eq!(
        schedule.installments.is_empty(),
        schedule.financed_minor == 0
    );

    type Part = fn(&malipo_plans::ScheduledInstallment) -> i64;
    let components: [(i64, Part); 4] = [
        (schedule.financed_minor, |i| i.principal_minor),
        (schedule.interest_minor, |i| i.interest_minor),
        (schedule.fee_minor, |i| i.fee_minor),
        (schedule.inflation_minor, |i| i.inflation_minor),
    ];
    for (component, part) in components {
        let parts: Vec<i64> = schedule.installments.iter().map(part).collect();
        if parts.is_empty() {
            continue;
        }
        prop_assert_eq!(
            parts.iter().map(|&p| i128::from(p)).sum::<i128>(),
            i128::from(component)
        );
        prop_assert!(parts.windows(2).all(|w| w[0] >= w[1]), "{parts:?}");
        prop_assert!(parts[0] - parts[parts.len() - 1] <= 1, "{parts:?}");
    }

    for (index, installment) in schedule.installments.iter().enumerate() {
        prop_assert_eq!(installment.number as usize, index + 1);
        prop_assert_eq!(
            installment.amount_minor,
            installment.principal_minor
                + installment.interest_minor
                + installment.fee_minor
                + installment.inflation_minor
        );
    }
    if let Some(first) = schedule.installments.first() {
        prop_assert!(first.due_date >= start);
    }
    prop_assert!(
        schedule
            .installments
            .windows(2)
            .all(|w| w[0].due_date < w[1].due_date)
    );
    Ok(())
}

proptest! {
    #[test]
    fn valid_terms_give_an_exact_schedule(
        (total, terms) in total_and_deposit()
            .prop_flat_map(|(total, deposit)| (Just(total), valid_terms(deposit))),
        currency in currency(),
        start in start_between(date!(2000 - 01 - 01), date!(2100 - 12 - 31)),
    ) {
        let total = Money::new(total, currency);
        let schedule = quote(&terms, total, start);
        prop_assert!(schedule.is_ok(), "{schedule:?}");
        check(&schedule.unwrap(), total, start)?;
    }

    #[test]
    fn any_input_gives_a_schedule_or_an_error_never_a_panic(
        terms in wild_terms(),
        total in prop_oneof![any::<i64>(), -2i64..=1_000_000, Just(i64::MAX)],
        currency in currency(),
        start in start_between(Date::MIN, Date::MAX),
    ) {
        let total = Money::new(total, currency);
        match quote(&terms, total, start) {
            Ok(schedule) => check(&schedule, total, start)?,
            Err(error) => {
                let error: TermsError = error;
                prop_assert!(error.to_string().starts_with(error.field()));
            }
        }
    }

    #[test]
    fn payments_fill_the_oldest_installments_first(
        (outstanding, amount) in proptest::collection::vec(0i64..=1_000_000_000_000, 0..20)
            .prop_flat_map(|outstanding| {
                let owed: i64 = outstanding.iter().sum();
                (Just(outstanding), 0..=owed + 1_000)
            }),
    ) {
        let allocation = allocate_payment(&outstanding, amount);
        check_allocation(&outstanding, amount, &allocation.per_installment, allocation.unapplied_minor)?;
    }

    #[test]
    fn any_payment_allocates_without_panicking(
        outstanding in proptest::collection::vec(any::<i64>(), 0..20),
        amount in any::<i64>(),
    ) {
        let allocation = allocate_payment(&outstanding, amount);
        check_allocation(&outstanding, amount, &allocation.per_installment, allocation.unapplied_minor)?;
    }
}

fn check_allocation(
    outstanding: &[i64],
    amount: i64,
    applied: &[i64],
    unapplied: i64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(applied.len(), outstanding.len());
    let total: i128 = applied.iter().map(|&a| i128::from(a)).sum();
    prop_assert_eq!(total + i128::from(unapplied), i128::from(amount));
    for (index, (&paid, &owed)) in applied.iter().zip(outstanding).enumerate() {
        prop_assert!(paid >= 0 && paid <= owed.max(0));
        if paid > 0 {
            // Everything before it is paid off.
            prop_assert!(
                applied[..index]
                    .iter()
                    .zip(outstanding)
                    .all(|(&p, &o)| p == o.max(0))
            );
        }
    }
    if unapplied > 0 {
        prop_assert!(
            applied
                .iter()
                .zip(outstanding)
                .all(|(&p, &o)| p == o.max(0))
        );
    }
    Ok(())
}
