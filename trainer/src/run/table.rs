//! What the CSV files (metrics.csv, a sweep's results.csv) share: the header taken from the
//! row struct's fields, and the number formats of their columns.
//!
//! A row is a serde struct, one field per column in file order, so each column is named once.
//! The csv crate prints floats its own way (`8.0`); the files print them with Rust's `{}`
//! (`8`, `0.01`, `NaN`), so float columns name a formatter here with `serialize_with`.
//! Reading needs nothing special: `NaN` and `inf` parse as f64.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serializer;

/// The column names of the row struct `T`, in order: its header line.
pub fn header<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    // The derived Deserialize names its fields to the deserializer; nothing is read.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields.expect("a CSV row type is a struct with named fields")
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A float column printed with `{}`: `0.01`, `8`, `NaN`.
pub fn display<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(x)
}

/// A float column printed with one decimal (`{:.1}`).
pub fn one_decimal<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{x:.1}"))
}
