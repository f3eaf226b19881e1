//! Times in status: `jiff::Timestamp` in memory, RFC 3339 in UTC on the wire (second precision, or
//! milliseconds when there are any, as retry times below a second need).

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time recorded in status. Kept to the millisecond, so what is stored is what is read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Timestamp);

impl Time {
    /// `t` cut to the millisecond.
    pub fn new(t: Timestamp) -> Self {
        let ms = t.as_millisecond();
        Self(Timestamp::from_millisecond(ms).unwrap_or(t))
    }

    /// `t` cut to the second, as Kubernetes writes times.
    pub fn seconds(t: Timestamp) -> Self {
        Self(Timestamp::from_second(t.as_second()).unwrap_or(t))
    }

    pub fn get(self) -> Timestamp {
        self.0
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = if self.0.subsec_millisecond() == 0 {
            "%Y-%m-%dT%H:%M:%SZ"
        } else {
            "%Y-%m-%dT%H:%M:%S%.3fZ"
        };
        write!(f, "{}", self.0.strftime(format))
    }
}

/// Compares with a written time, e.g. `"2026-11-28T10:00:01Z"`.
impl PartialEq<&str> for Time {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<Time>().is_ok_and(|t| t == *self)
    }
}

impl std::str::FromStr for Time {
    type Err = jiff::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Timestamp>().map(Self::new)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Time {
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_second_and_millisecond_precision() {
        for s in ["2026-11-29T15:00:00Z", "2026-11-29T15:00:00.250Z"] {
            let t: Time = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(s));
        }
        let t: Time = "2026-11-29T15:00:00.123456Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-29T15:00:00.123Z");
        assert_eq!(Time::seconds(t.get()).to_string(), "2026-11-29T15:00:00Z");
    }

    #[test]
    fn an_unreadable_time_is_an_error_not_the_epoch() {
        assert!(serde_json::from_value::<Time>(serde_json::json!("soon")).is_err());
        assert!(serde_json::from_value::<Time>(serde_json::json!("2026-11-29 15:00:00")).is_err());
    }
}
