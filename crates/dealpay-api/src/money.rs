//! Amounts: decimal strings at the edges (spec, status, flags), integer cents inside, because the
//! Billing API reports `RealTotalCost` in cents and a cap compared in floating point can round past.

/// Parses `"1200"`, `"1200.5"` or `"1200.50"` into cents; anything else (signs, exponents, three
/// decimals, overflow) is refused.
pub fn parse_cents(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (s.contains('.') && !digits(frac)) || frac.len() > 2 || whole.len() > 15 {
        return None;
    }
    let cents = format!("{frac:0<2}").parse::<i64>().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

/// Formats cents as a decimal string with two places, e.g. `123456` → `"1234.56"`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// The pattern `spec.maxTotalCost` and `--max-total-cost` must match.
pub const AMOUNT_PATTERN: &str = "^[0-9]{1,15}(\\.[0-9]{1,2})?$";

/// Parses an amount flag such as `1200.00` into cents (a clap `value_parser`).
pub fn amount_arg(s: &str) -> Result<i64, String> {
    parse_cents(s)
        .ok_or_else(|| format!("{s:?} is not an amount like 1200.00 (at most two decimals)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        assert_eq!(parse_cents("1200.00"), Some(120_000));
        assert_eq!(parse_cents("1200.5"), Some(120_050));
        assert_eq!(parse_cents("0.07"), Some(7));
        assert_eq!(parse_cents("12"), Some(1200));
        for bad in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1",
            "+1",
            "1e3",
            "1,00",
            " 1",
            "9999999999999999",
        ] {
            assert_eq!(parse_cents(bad), None, "{bad:?}");
        }
        assert_eq!(format_cents(120_050), "1200.50");
        assert_eq!(format_cents(7), "0.07");
        assert_eq!(format_cents(-250), "-2.50");
        let re = regex::Regex::new(AMOUNT_PATTERN).unwrap();
        for ok in ["1200.00", "0", "1.5"] {
            assert!(re.is_match(ok) && parse_cents(ok).is_some(), "{ok}");
        }
        for bad in ["1.234", "-1", "1e3"] {
            assert!(!re.is_match(bad) && parse_cents(bad).is_none(), "{bad}");
        }
    }
}
