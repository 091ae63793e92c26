//! [`RateLimitHeaders`]: the `X-RateLimit-*` headers of an answer from ModelGates, read as
//! numbers so that an app can pass them on to its own clients without passing on anything else.

/// ModelGates' `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` of one
/// answer, each read as an unsigned integer (a value that is not one is left out).
///
/// Calls through [`ModelGatesClient::openai_reporting`](crate::ModelGatesClient::openai_reporting)
/// report them after each answer; modelgates-axum passes them on to the handler's response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitHeaders {
    /// `X-RateLimit-Limit`: calls allowed in the window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: calls left in the window.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: when the window resets, as ModelGates wrote it (milliseconds since
    /// the Unix epoch).
    pub reset: Option<u64>,
}

impl RateLimitHeaders {
    /// The header names, in the order of [`Self::pairs`].
    pub const NAMES: [&'static str; 3] = [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ];

    /// The headers of `headers`; `None` when none of the three is there as a number.
    #[must_use]
    pub fn read(headers: &reqwest::header::HeaderMap) -> Option<Self> {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        let [limit, remaining, reset] = Self::NAMES.map(number);
        let read = Self {
            limit,
            remaining,
            reset,
        };
        (read != Self::default()).then_some(read)
    }

    /// Each header that has a value: its lower-case name and the number.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, u64)> + use<> {
        Self::NAMES
            .into_iter()
            .zip([self.limit, self.remaining, self.reset])
            .filter_map(|(name, value)| Some((name, value?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbers_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(RateLimitHeaders::read(&headers), None);
        headers.insert("x-ratelimit-limit", "20".parse().unwrap());
        headers.insert("x-ratelimit-remaining", "<script>".parse().unwrap());
        headers.insert("x-ratelimit-reset", " 1767225600000 ".parse().unwrap());
        let read = RateLimitHeaders::read(&headers).unwrap();
        assert_eq!(read.limit, Some(20));
        assert_eq!(read.remaining, None);
        assert_eq!(
            read.pairs().collect::<Vec<_>>(),
            [
                ("x-ratelimit-limit", 20),
                ("x-ratelimit-reset", 1_767_225_600_000)
            ]
        );
    }
}
