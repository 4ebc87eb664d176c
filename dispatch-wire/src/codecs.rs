//! Field codecs that serde's derive does not offer, used through
//! `deserialize_with`/`with` on request fields. They exist to keep request
//! parsing strict: an odd JSON shape must be an error or mean exactly what
//! it says, never be read as something else.

/// Reads an optional nested struct from a JSON object only. serde's
/// derived struct deserializers also take an array of positional fields,
/// so without this `{"filter": [null, null]}` would read as an empty filter.
pub(crate) mod object_only {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? {
            None => Ok(None),
            Some(map) => serde_json::from_value(serde_json::Value::Object(map))
                .map(Some)
                .map_err(D::Error::custom),
        }
    }
}

/// `Option<Option<T>>` that tells an absent field from an explicit `null`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
