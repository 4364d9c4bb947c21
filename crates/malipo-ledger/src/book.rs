use std::collections::HashMap;

use malipo_core::AccountId;

use crate::{AccountState, LedgerError, NewEntry, NewTransfer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    Posted,
    /// The same transfer (same key, same content) was posted before.
    AlreadyPosted,
}

/// What becomes of a pending transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    Post,
    Void,
}

/// Account states and known transfer keys, with the rules applied to them.
/// Every operation is all-or-nothing: on error the book is unchanged.
#[derive(Debug, Clone, Default)]
pub struct Book {
    accounts: HashMap<AccountId, AccountState>,
    keys: HashMap<String, String>,
}

impl Book {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert_account(&mut self, id: AccountId, state: AccountState) {
        self.accounts.insert(id, state);
    }

    /// Remembers a key already posted, with its content hash.
    pub fn insert_key(&mut self, key: String, content_hash: String) {
        self.keys.insert(key, content_hash);
    }

    pub fn account(&self, id: AccountId) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &AccountState)> {
        self.accounts.iter()
    }

    /// Posts (or holds, if pending) a transfer.
    pub fn post(&mut self, transfer: &NewTransfer) -> Result<PostOutcome, LedgerError> {
        transfer.validate()?;
        let content_hash = transfer.content_hash();
        if let Some(known) = self.keys.get(&transfer.key) {
            return if *known == content_hash {
                Ok(PostOutcome::AlreadyPosted)
            } else {
                Err(LedgerError::KeyConflict {
                    key: transfer.key.clone(),
                })
            };
        }
        let changed = self.stage(&transfer.entries, |state, amount| {
            if !transfer.pending {
                state.posted_minor = state.posted_minor.checked_add(amount)?;
            } else if amount < 0 {
                state.pending_debits_minor = state
                    .pending_debits_minor
                    .checked_add(amount.checked_neg()?)?;
            } else {
                state.pending_credits_minor = state.pending_credits_minor.checked_add(amount)?;
            }
            Some(())
        })?;
        self.accounts.extend(changed);
        self.keys.insert(transfer.key.clone(), content_hash);
        Ok(PostOutcome::Posted)
    }

    /// Posts or voids the entries of a pending transfer.
    pub fn settle_hold(
        &mut self,
        entries: &[NewEntry],
        outcome: HoldOutcome,
    ) -> Result<(), LedgerError> {
        let changed = self.stage(entries, |state, amount| {
            if amount < 0 {
                state.pending_debits_minor = state
                    .pending_debits_minor
                    .checked_sub(amount.checked_neg()?)?;
            } else {
                state.pending_credits_minor = state.pending_credits_minor.checked_sub(amount)?;
            }
            if outcome == HoldOutcome::Post {
                state.posted_minor = state.posted_minor.checked_add(amount)?;
            }
            Some(())
        })?;
        self.accounts.extend(changed);
        Ok(())
    }

    /// Applies `change` to copies of the touched accounts and checks them;
    /// returns the new states without touching the book.
    fn stage(
        &self,
        entries: &[NewEntry],
        change: impl Fn(&mut AccountState, i64) -> Option<()>,
    ) -> Result<HashMap<AccountId, AccountState>, LedgerError> {
        let mut staged: HashMap<AccountId, AccountState> = HashMap::with_capacity(entries.len());
        for entry in entries {
            let state = match staged.get_mut(&entry.account_id) {
                Some(state) => state,
                None => {
                    let current = *self
                        .accounts
                        .get(&entry.account_id)
                        .ok_or(LedgerError::UnknownAccount(entry.account_id))?;
                    staged.entry(entry.account_id).or_insert(current)
                }
            };
            if state.currency != entry.amount.currency {
                return Err(LedgerError::CurrencyMismatch {
                    account: entry.account_id,
                    expected: state.currency,
                    got: entry.amount.currency,
                });
            }
            change(state, entry.amount.amount_minor).ok_or(LedgerError::Overflow)?;
        }
        for (id, state) in &staged {
            if !state.respects_its_flag()? {
                return Err(LedgerError::WouldGoNegative { account: *id });
            }
        }
        Ok(staged)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use malipo_core::{Currency, Money};
    use proptest::prelude::*;

    use super::*;

    const ACCOUNTS: usize = 4;

    fn book_with_accounts() -> (Book, Vec<AccountId>) {
        let mut book = Book::new();
        let ids: Vec<AccountId> = (0..ACCOUNTS).map(|_| AccountId::generate()).collect();
        for (index, id) in ids.iter().enumerate() {
            // The first two may not go negative, like merchants' balances.
            book.insert_account(*id, AccountState::new(Currency::KES, index < 2));
        }
        (book, ids)
    }

    fn transfer(
        ids: &[AccountId],
        from: usize,
        to: usize,
        amount: i64,
        pending: bool,
        key: String,
    ) -> NewTransfer {
        NewTransfer {
            pending,
            ..NewTransfer::posted(
                key,
                "test",
                vec![
                    NewEntry {
                        account_id: ids[from],
                        amount: Money::new(-amount, Currency::KES),
                    },
                    NewEntry {
                        account_id: ids[to],
                        amount: Money::new(amount, Currency::KES),
                    },
                ],
            )
        }
    }

    fn check_invariants(book: &Book) {
        let mut posted: BTreeMap<Currency, i128> = BTreeMap::new();
        let mut pending: BTreeMap<Currency, i128> = BTreeMap::new();
        for (_, state) in book.accounts() {
            *posted.entry(state.currency).or_default() += i128::from(state.posted_minor);
            *pending.entry(state.currency).or_default() +=
                i128::from(state.pending_credits_minor) - i128::from(state.pending_debits_minor);
            assert!(state.pending_debits_minor >= 0 && state.pending_credits_minor >= 0);
            if state.must_not_go_negative {
                assert!(
                    state.spendable_minor().unwrap() >= 0,
                    "a flagged account went negative"
                );
            }
        }
        assert!(
            posted.values().all(|sum| *sum == 0),
            "posted balances sum to zero"
        );
        assert!(pending.values().all(|sum| *sum == 0), "holds sum to zero");
    }

    #[derive(Debug, Clone)]
    enum Step {
        Post {
            from: usize,
            to: usize,
            amount: i64,
            pending: bool,
        },
        Repost(usize),
        Settle {
            index: usize,
            post: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..ACCOUNTS, 0..ACCOUNTS, 1i64..1_000_000, any::<bool>()).prop_map(
                |(from, to, amount, pending)| Step::Post {
                    from,
                    to,
                    amount,
                    pending
                }
            ),
            (0usize..64).prop_map(Step::Repost),
            (0usize..64, any::<bool>()).prop_map(|(index, post)| Step::Settle { index, post }),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_every_invariant(steps in proptest::collection::vec(step(), 1..120)) {
            let (mut book, ids) = book_with_accounts();
            let mut posted: Vec<NewTransfer> = Vec::new();
            let mut holds: Vec<Option<NewTransfer>> = Vec::new();
            for (number, step) in steps.into_iter().enumerate() {
                let before = book.clone();
                match step {
                    Step::Post { from, to, amount, pending } => {
                        let transfer = transfer(&ids, from, to, amount, pending, format!("t{number}"));
                        match book.post(&transfer) {
                            Ok(outcome) => {
                                prop_assert_eq!(outcome, PostOutcome::Posted);
                                if pending { holds.push(Some(transfer.clone())); }
                                posted.push(transfer);
                            }
                            Err(error) => {
                                prop_assert!(matches!(error, LedgerError::WouldGoNegative { .. }), "{error}");
                                prop_assert_eq!(book.accounts.clone(), before.accounts.clone(), "a refusal changes nothing");
                            }
                        }
                    }
                    Step::Repost(index) if !posted.is_empty() => {
                        // Posting the same transfer again posts nothing.
                        let again = &posted[index % posted.len()];
                        prop_assert_eq!(book.post(again), Ok(PostOutcome::AlreadyPosted));
                        prop_assert_eq!(book.accounts.clone(), before.accounts.clone());
                        // The same key with other content is refused.
                        let mut other = again.clone();
                        other.description.push('!');
                        prop_assert!(matches!(book.post(&other), Err(LedgerError::KeyConflict { .. })), "key conflict");
                    }
                    Step::Settle { index, post } if !holds.is_empty() => {
                        let slot = index % holds.len();
                        if let Some(hold) = holds[slot].take() {
                            let outcome = if post { HoldOutcome::Post } else { HoldOutcome::Void };
                            prop_assert_eq!(book.settle_hold(&hold.entries, outcome), Ok(()));
                        }
                    }
                    _ => {}
                }
                check_invariants(&book);
            }
        }

        #[test]
        fn transfers_that_validate_sum_to_zero(amounts in proptest::collection::vec(-1_000_000i64..1_000_000, 1..8)) {
            let mut entries: Vec<NewEntry> = amounts
                .iter()
                .map(|amount| NewEntry { account_id: AccountId::generate(), amount: Money::new(*amount, Currency::UGX) })
                .collect();
            let total: i64 = amounts.iter().sum();
            entries.push(NewEntry { account_id: AccountId::generate(), amount: Money::new(-total, Currency::UGX) });
            let transfer = NewTransfer::posted("k", "d", entries);
            if transfer.validate().is_ok() {
                let sum: i128 = transfer.entries.iter().map(|e| i128::from(e.amount.amount_minor)).sum();
                prop_assert_eq!(sum, 0);
            }
            // Tipping any one entry off by one unbalances it.
            let mut tipped = transfer.clone();
            tipped.entries[0].amount.amount_minor += 1;
            prop_assert!(tipped.validate().is_err());
        }
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        let (mut book, ids) = book_with_accounts();
        let big = transfer(&ids, 2, 3, i64::MAX, false, "a".into());
        assert_eq!(book.post(&big), Ok(PostOutcome::Posted));
        let more = transfer(&ids, 2, 3, 1, false, "b".into());
        assert_eq!(book.post(&more), Err(LedgerError::Overflow));
    }

    #[test]
    fn a_pending_debit_counts_against_what_may_be_spent() {
        let (mut book, ids) = book_with_accounts();
        book.post(&transfer(&ids, 2, 0, 100, false, "fund".into()))
            .unwrap();
        book.post(&transfer(&ids, 0, 3, 70, true, "hold".into()))
            .unwrap();
        assert_eq!(book.account(ids[0]).unwrap().spendable_minor(), Ok(30));
        assert_eq!(
            book.post(&transfer(&ids, 0, 3, 31, false, "too much".into())),
            Err(LedgerError::WouldGoNegative { account: ids[0] })
        );
        let hold = transfer(&ids, 0, 3, 70, true, "hold".into());
        book.settle_hold(&hold.entries, HoldOutcome::Void).unwrap();
        assert_eq!(book.account(ids[0]).unwrap().spendable_minor(), Ok(100));
    }
}
