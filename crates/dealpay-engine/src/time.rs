//! Time formatting for status fields and the API.

use jiff::Timestamp;
use jiff::tz::{TimeZone, offset};

/// RFC 3339 in UTC with second precision, as Kubernetes writes times.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `YYYY-MM-DD HH:MM:SS` in UTC+8, the Billing API's time format.
pub fn api_time(t: Timestamp) -> String {
    t.to_zoned(TimeZone::fixed(offset(8)))
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}
