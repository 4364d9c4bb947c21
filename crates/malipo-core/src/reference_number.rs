//! Payment reference numbers ("Lipa numbers"): digits only, short enough to
//! type on a phone keypad, ending in a Damm check digit. The Damm check
//! catches every single mistyped digit and every swap of two adjacent
//! digits, the two commonest keypad mistakes.

/// Digits before the check digit: 10^8 numbers, so a random one collides
/// with an active reference rarely even with millions active (and a
/// collision is simply drawn again).
pub const BODY_DIGITS: usize = 8;

/// Damm's quasigroup of order 10 (weakly totally anti-symmetric).
const TABLE: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn interim(digits: &str) -> Option<u8> {
    digits.bytes().try_fold(0u8, |state, byte| {
        let digit = byte.checked_sub(b'0').filter(|d| *d < 10)?;
        Some(TABLE[usize::from(state)][usize::from(digit)])
    })
}

/// The check digit for `body` (ASCII digits), or `None` if it holds
/// anything else.
pub fn check_digit(body: &str) -> Option<char> {
    interim(body).map(|d| char::from(b'0' + d))
}

/// Whether `number` is all digits and its last digit checks the rest.
pub fn is_valid(number: &str) -> bool {
    number.len() >= 2 && interim(number) == Some(0)
}

/// A new reference number from 8 random digits (a leading zero is avoided,
/// since some keypads and spreadsheets drop it).
pub fn generate() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    let body = 10_000_000 + u64::from_le_bytes(bytes) % 90_000_000;
    let body = body.to_string();
    let check = check_digit(&body).expect("digits only");
    format!("{body}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_digit_is_damms() {
        // The algorithm's published example: 572 → 4.
        assert_eq!(check_digit("572"), Some('4'));
        assert!(is_valid("5724"));
        assert!(!is_valid("5742"));
        assert!(!is_valid("57a4"));
        assert!(!is_valid(""));
    }

    #[test]
    fn every_single_digit_error_and_adjacent_swap_is_caught() {
        for _ in 0..200 {
            let number = generate();
            assert_eq!(number.len(), BODY_DIGITS + 1);
            assert!(is_valid(&number), "{number}");
            let digits: Vec<u8> = number.bytes().collect();
            for position in 0..digits.len() {
                for replacement in b'0'..=b'9' {
                    if replacement == digits[position] {
                        continue;
                    }
                    let mut typo = digits.clone();
                    typo[position] = replacement;
                    assert!(!is_valid(std::str::from_utf8(&typo).unwrap()));
                }
                if position + 1 < digits.len() && digits[position] != digits[position + 1] {
                    let mut swapped = digits.clone();
                    swapped.swap(position, position + 1);
                    assert!(!is_valid(std::str::from_utf8(&swapped).unwrap()));
                }
            }
        }
    }
}
