//! The outcome of a transaction, chosen by the last four digits of the
//! phone number (the payer's for a collection, the payee's for a payout),
//! the same in every fake.
//!
//! | Ends in | What the fake does |
//! |---------|--------------------|
//! | `0001`  | the customer declines (cancels the prompt) |
//! | `0002`  | insufficient funds |
//! | `0003`  | the customer never answers: the operator times the prompt out |
//! | `0004`  | succeeds, but the callback is lost: only a status query tells |
//! | `0005`  | succeeds, and the callback arrives twice |
//! | `0006`  | succeeds, with a slow callback (ten times the usual delay) |
//! | `0007`  | the first request for it hangs past any client timeout (the operator is slow); a retry is answered |
//! | `0008`  | the account is invalid (a payout to it fails; a collection is refused) |
//! | `0009`  | fails with a result code the operator documents nowhere |
//! | other   | succeeds |

/// What happens to a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Succeeds,
    Declined,
    InsufficientFunds,
    NoAnswer,
    CallbackLost,
    CallbackTwice,
    SlowCallback,
    FirstRequestHangs,
    InvalidAccount,
    UnknownCode,
}

impl Trigger {
    /// The trigger of a phone number (any format: only its digits count).
    pub fn of(phone: &str) -> Self {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        match digits.get(digits.len().saturating_sub(4)..).unwrap_or("") {
            "0001" => Trigger::Declined,
            "0002" => Trigger::InsufficientFunds,
            "0003" => Trigger::NoAnswer,
            "0004" => Trigger::CallbackLost,
            "0005" => Trigger::CallbackTwice,
            "0006" => Trigger::SlowCallback,
            "0007" => Trigger::FirstRequestHangs,
            "0008" => Trigger::InvalidAccount,
            "0009" => Trigger::UnknownCode,
            _ => Trigger::Succeeds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_four_digits_choose() {
        assert_eq!(Trigger::of("+254712340001"), Trigger::Declined);
        assert_eq!(Trigger::of("254712340009"), Trigger::UnknownCode);
        assert_eq!(Trigger::of("0712 345 678"), Trigger::Succeeds);
        assert_eq!(Trigger::of(""), Trigger::Succeeds);
    }
}
