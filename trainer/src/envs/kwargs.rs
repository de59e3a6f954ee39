//! Keyword arguments of `gym.make` for `gym:<ID>` environments (`--env-kwargs`, the
//! `env_kwargs` key): a JSON object, given as JSON text on the command line and as JSON text
//! or a TOML table in files. Saved in `config.toml` as JSON text, which keeps every value
//! exactly (TOML has no null, and Python's `None` is a common keyword value).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The keyword arguments; empty when none are given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EnvKwargs(serde_json::Map<String, serde_json::Value>);

impl EnvKwargs {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The object as compact JSON (keys sorted), as the worker receives it.
    pub fn to_json(&self) -> String {
        serde_json::Value::Object(self.0.clone()).to_string()
    }

    fn from_value(value: serde_json::Value) -> Result<EnvKwargs, String> {
        match value {
            serde_json::Value::Object(map) => Ok(EnvKwargs(map)),
            other => Err(format!(
                "env kwargs must be a JSON object such as '{{\"env_name\": \"reach-v3\"}}', got `{other}`"
            )),
        }
    }
}

impl std::str::FromStr for EnvKwargs {
    type Err = String;
    fn from_str(text: &str) -> Result<EnvKwargs, String> {
        let value = serde_json::from_str(text).map_err(|e| {
            format!("env kwargs must be a JSON object such as '{{\"env_name\": \"reach-v3\"}}': {e} in `{text}`")
        })?;
        EnvKwargs::from_value(value)
    }
}

impl fmt::Display for EnvKwargs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl Serialize for EnvKwargs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_json())
    }
}

impl<'de> Deserialize<'de> for EnvKwargs {
    /// JSON text, or a table of the file itself.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EnvKwargs, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(text) => text.parse(),
            other => EnvKwargs::from_value(other),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwargs_parse_objects_only_and_round_trip_through_toml() {
        let kwargs: EnvKwargs = r#"{"env_name": "reach-v3", "render_mode": null, "x": 0.1}"#
            .parse()
            .unwrap();
        assert_eq!(
            kwargs.to_json(),
            r#"{"env_name":"reach-v3","render_mode":null,"x":0.1}"#
        );
        for bad in ["[1, 2]", "\"reach-v3\"", "{env_name: 1}", ""] {
            let err = bad.parse::<EnvKwargs>().unwrap_err();
            assert!(err.contains("must be a JSON object"), "{bad}: {err}");
        }
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct File {
            env_kwargs: EnvKwargs,
        }
        let text = toml::to_string(&File {
            env_kwargs: kwargs.clone(),
        })
        .unwrap();
        assert_eq!(toml::from_str::<File>(&text).unwrap().env_kwargs, kwargs);
        // A TOML table is read as the same object.
        let table: File =
            toml::from_str("[env_kwargs]\nenv_name = \"reach-v3\"\nx = 0.1\n").unwrap();
        assert_eq!(
            table.env_kwargs.to_json(),
            r#"{"env_name":"reach-v3","x":0.1}"#
        );
    }
}
