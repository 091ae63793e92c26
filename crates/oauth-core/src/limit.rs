//! [`SpendLimit`]: the spend limit asked for the key a sign-in issues, in credits, as
//! `/auth`'s `limit` parameter; and [`KeyRequest`], what the `/auth` URL asks for the key.
//!
//! The rules [`SpendLimit::parse`] applies to text from a user: a plain decimal number of
//! credits (`5`, `12.5`, `0.25`), digits with at most one `.` and at most two decimals, greater
//! than zero and below one billion; no sign, no exponent, no spaces, no `NaN` or `inf`. It is
//! sent as its canonical text (`12.5`), never as the text it was parsed from. ModelGates, not
//! the app, enforces the limit.

use std::fmt;

/// A spend limit in credits, exact to the cent.
///
/// ```
/// use modelgates_oauth_core::key::SpendLimit;
///
/// assert_eq!(SpendLimit::parse("12.50").unwrap().to_string(), "12.5");
/// assert_eq!(SpendLimit::parse("0.01").unwrap().cents(), 1);
/// for bad in ["0", "-5", "1e3", "NaN", "5.001", " 5", "5 credits", ""] {
///     assert!(SpendLimit::parse(bad).is_err(), "{bad}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpendLimit {
    cents: u64,
}

/// Why a spend limit was refused. Each message says what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSpendLimit {
    /// Not a plain decimal number.
    #[error("the spend limit must be a number of credits such as 5 or 12.50")]
    NotANumber,
    /// More than two decimals.
    #[error("the spend limit may have at most two decimals")]
    TooPrecise,
    /// Zero.
    #[error("the spend limit must be more than zero")]
    Zero,
    /// One billion credits or more.
    #[error("the spend limit is too large")]
    TooLarge,
}

/// The largest limit accepted, in cents: below one billion credits.
const MAX_CENTS: u64 = 100_000_000_000 - 1;

impl SpendLimit {
    /// Parses a spend limit by the module's rules.
    ///
    /// # Errors
    ///
    /// [`InvalidSpendLimit`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, InvalidSpendLimit> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(InvalidSpendLimit::NotANumber);
        }
        if fraction.len() > 2 {
            return Err(InvalidSpendLimit::TooPrecise);
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 9 {
            return Err(InvalidSpendLimit::TooLarge);
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| InvalidSpendLimit::TooLarge)?
        };
        let fraction: u64 = format!("{fraction:0<2}")
            .parse()
            .map_err(|_| InvalidSpendLimit::NotANumber)?;
        Self::from_cents(whole * 100 + fraction).ok_or(InvalidSpendLimit::Zero)
    }

    /// A limit of `cents` hundredths of a credit; `None` for zero or one billion credits or more.
    #[must_use]
    pub const fn from_cents(cents: u64) -> Option<Self> {
        if cents > 0 && cents <= MAX_CENTS {
            Some(Self { cents })
        } else {
            None
        }
    }

    /// The limit in hundredths of a credit.
    #[must_use]
    pub fn cents(&self) -> u64 {
        self.cents
    }
}

impl fmt::Display for SpendLimit {
    /// The canonical text: no trailing zeros (`12.5`, `5`, `0.01`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, cents) = (self.cents / 100, self.cents % 100);
        match cents {
            0 => write!(f, "{whole}"),
            _ if cents % 10 == 0 => write!(f, "{whole}.{}", cents / 10),
            _ => write!(f, "{whole}.{cents:02}"),
        }
    }
}

impl std::str::FromStr for SpendLimit {
    type Err = InvalidSpendLimit;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// What the `/auth` URL asks for the key the sign-in issues: a spend limit and a label, both
/// shown to the user on ModelGates' consent page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRequest {
    /// The spend limit, sent as `limit`.
    pub limit: Option<SpendLimit>,
    /// The key's label, sent as `key_label`.
    pub label: Option<String>,
}

impl KeyRequest {
    /// A request for a key with this limit and label.
    #[must_use]
    pub fn new(limit: Option<SpendLimit>, label: Option<String>) -> Self {
        Self { limit, label }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_canonical() {
        for (text, cents, canonical) in [
            ("5", 500, "5"),
            ("5.5", 550, "5.5"),
            ("5.50", 550, "5.5"),
            ("0.01", 1, "0.01"),
            ("007.10", 710, "7.1"),
            ("999999999.99", MAX_CENTS, "999999999.99"),
        ] {
            let limit = SpendLimit::parse(text).unwrap();
            assert_eq!(limit.cents(), cents, "{text}");
            assert_eq!(limit.to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn refused_with_a_reason() {
        use InvalidSpendLimit::*;
        for (text, reason) in [
            ("", NotANumber),
            ("-5", NotANumber),
            ("+5", NotANumber),
            ("5.", NotANumber),
            (".5", NotANumber),
            ("1e3", NotANumber),
            ("NaN", NotANumber),
            ("inf", NotANumber),
            ("5 ", NotANumber),
            ("5,5", NotANumber),
            ("١٢", NotANumber),
            ("5.001", TooPrecise),
            ("0", Zero),
            ("0.00", Zero),
            ("1000000000", TooLarge),
            ("99999999999999999999999", TooLarge),
        ] {
            assert_eq!(SpendLimit::parse(text), Err(reason), "{text:?}");
        }
    }
}
