//! Integers in request bodies, under the API's one rule for bad bodies: what is not
//! JSON, or does not fit the document's types (a string where an integer goes, `9.5`,
//! an unknown field) is 400; a value of the right type outside its documented range
//! (a signal of 10^30, a negative uid) is 422. A Rust integer field would make a huge
//! number a 400 and a merely large one a 422, so such fields take a [`JsonInt`] and
//! check its range after parsing.

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

use super::ApiError;

/// Any JSON integer (JSON Schema's `integer`: a number without a fractional part,
/// `1e30` included), held exactly up to the `i128` range and saturated beyond it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonInt(pub i128);

impl JsonInt {
    /// The integer `number` stands for, or `None` for a fraction.
    pub fn of(number: &serde_json::Number) -> Option<Self> {
        if let Some(n) = number.as_i64() {
            return Some(JsonInt(n.into()));
        }
        if let Some(n) = number.as_u64() {
            return Some(JsonInt(n.into()));
        }
        // Integers past u64 arrive as floats; `as` saturates at the i128 bounds.
        let f = number.as_f64()?;
        (f.fract() == 0.0).then_some(JsonInt(f as i128))
    }

    /// The value as `T` if it lies in `min..=max`, else 422 `code` naming `field`.
    pub fn within<T>(self, min: T, max: T, field: &str, code: &'static str) -> Result<T, ApiError>
    where
        T: TryFrom<i128> + Into<i128> + Copy + std::fmt::Display,
    {
        let (lo, hi): (i128, i128) = (min.into(), max.into());
        if (lo..=hi).contains(&self.0) {
            if let Ok(v) = T::try_from(self.0) {
                return Ok(v);
            }
        }
        Err(ApiError::invalid(
            code,
            format!("{field} {} is out of range {min}–{max}", self),
        ))
    }
}

impl std::fmt::Display for JsonInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == i128::MAX || self.0 == i128::MIN {
            f.write_str(if self.0 > 0 {
                "(huge)"
            } else {
                "(huge negative)"
            })
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl<'de> Deserialize<'de> for JsonInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(d)?;
        JsonInt::of(&number)
            .ok_or_else(|| D::Error::custom(format!("invalid type: {number}, expected an integer")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<JsonInt, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn any_integer_parses_and_is_checked_after() {
        assert_eq!(parse("9").unwrap(), JsonInt(9));
        assert_eq!(parse("-1").unwrap(), JsonInt(-1));
        assert_eq!(parse("18446744073709551615").unwrap().0, u64::MAX as i128);
        assert!(parse("99999999999999999999999").unwrap().0 > u64::MAX as i128);
        assert!(parse("1e300").unwrap().0 == i128::MAX);
        assert!(parse("9.5").is_err());
        assert!(parse("\"9\"").is_err());
        assert_eq!(JsonInt(9).within(1u32, 64, "signal", "x"), Ok(9));
        let e = JsonInt(i128::MAX).within(1u32, 64, "signal", "bad_signal");
        let e = e.unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, "bad_signal"));
        assert!(JsonInt(-1).within(0u32, u32::MAX, "uid", "x").is_err());
    }
}
