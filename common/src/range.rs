//! HTTP byte ranges (RFC 9110 §14): the one form browsers and download tools send, resolved
//! against an object's size. Whoever serves photo files (a worker, or the local balancer)
//! answers them the same way.

/// The byte range a request asks for: `bytes=a-b`, `bytes=a-` or `bytes=-n`. Several
/// ranges at once are answered with the whole object, as RFC 9110 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    From(u64, Option<u64>),
    Last(u64),
}

impl RangeRequest {
    pub fn parse(header: &str) -> Option<RangeRequest> {
        let spec = header.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (start, end) = spec.split_once('-')?;
        let (start, end) = (start.trim(), end.trim());
        if start.is_empty() {
            return end.parse().ok().map(RangeRequest::Last);
        }
        let start = start.parse().ok()?;
        let end = if end.is_empty() {
            None
        } else {
            Some(end.parse().ok()?)
        };
        Some(RangeRequest::From(start, end))
    }

    /// The first and last byte to send of an object of `size` bytes; `None` when none of
    /// it lies inside (416).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            RangeRequest::From(start, end) if start < size => {
                Some((start, end.unwrap_or(u64::MAX).min(size - 1)))
            }
            RangeRequest::Last(n) if n > 0 && size > 0 => Some((size.saturating_sub(n), size - 1)),
            _ => None,
        }
        .filter(|(a, b)| a <= b)
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, *};

    #[test]
    fn ranges() {
        let r = |s: &str| RangeRequest::parse(s);
        assert_eq!(r("bytes=0-99"), Some(From(0, Some(99))));
        assert_eq!(r("bytes=100-"), Some(From(100, None)));
        assert_eq!(r("bytes=-50"), Some(Last(50)));
        assert_eq!(r("bytes=0-1,5-9"), None, "several ranges: the whole object");
        assert_eq!(r("items=0-1"), None);
        assert_eq!(From(0, Some(99)).resolve(50), Some((0, 49)));
        assert_eq!(From(10, None).resolve(50), Some((10, 49)));
        assert_eq!(Last(80).resolve(50), Some((0, 49)));
        assert_eq!(From(50, None).resolve(50), None, "416");
        assert_eq!(From(9, Some(3)).resolve(50), None);
        assert_eq!(Last(0).resolve(50), None);
    }
}
