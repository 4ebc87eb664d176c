//! The environment as a figment provider (`DISPATCH_QUEUE__LEASE_SECS`
//! sets `queue.lease_secs`), read from an explicit list so tests pass
//! their own; and figment's errors flattened to one line naming the key.

/// figment reports the key and where the value came from; keep all of it on
/// one line.
pub(super) fn flatten_figment_error(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", e.path.join("."))
            };
            // Never echo a value that may be a credential.
            let path: Vec<&str> = e.path.iter().map(String::as_str).collect();
            let sensitive = matches!(
                path.as_slice(),
                ["api", "keys" | "hmac_secrets", ..]
                    | ["admin", "tokens", ..]
                    | ["database", "url", ..]
                    | ["metrics", "token", ..]
            );
            let kind = match &e.kind {
                figment::error::Kind::InvalidType(_, expected)
                | figment::error::Kind::InvalidValue(_, expected)
                    if sensitive =>
                {
                    format!("invalid value (not shown: it may be a secret), expected {expected}")
                }
                other => other.to_string(),
            };
            let origin = match e.metadata.as_ref() {
                Some(m) => match m.source.as_ref() {
                    Some(src) => format!(" (from {} {src})", m.name),
                    None => format!(" (from {})", m.name),
                },
                None => String::new(),
            };
            format!("{key}{kind}{origin}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// An `Env` provider that reads from an explicit list instead of the process
/// environment.
pub(super) struct EnvFrom {
    pub(super) vars: Vec<(String, String)>,
}

impl figment::Provider for EnvFrom {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (k, v) in &self.vars {
            let Some(rest) = k.strip_prefix("DISPATCH_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let value: figment::value::Value = v
                .parse()
                .unwrap_or_else(|_| figment::value::Value::from(v.clone()));
            let nested = figment::util::nest(&key, value);
            if let figment::value::Value::Dict(_, d) = nested {
                for (dk, dv) in d {
                    merge_dict(&mut dict, dk, dv);
                }
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge_dict(dict: &mut figment::value::Dict, key: String, value: figment::value::Value) {
    use figment::value::Value;
    match (dict.get_mut(&key), value) {
        (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => {
            for (k, v) in incoming {
                merge_dict(existing, k, v);
            }
        }
        (_, v) => {
            dict.insert(key, v);
        }
    }
}
