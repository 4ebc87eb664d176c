//! The three state machines the API shows, as enums: a delivery's state, a
//! subscription's status and an endpoint's circuit.
//!
//! They are defined once, here, so the daemon (which stores them), the API
//! (which shows them) and the console (which colours them) agree on every
//! name. The daemon's store decodes database values with `FromStr` and
//! treats an unknown value as a corrupt row, never as a default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Defines a string-backed enum: `as_str`, `ALL`, `Display`, `FromStr` and
/// serde under the same snake_case names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order of the state diagram.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and shown by the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownState { what: $what, value: s.to_string() }),
                }
            }
        }
    };
}

named_enum! {
    /// The state machine of one delivery (one event to one destination);
    /// ARCHITECTURE.md draws it.
    DeliveryState, "delivery state" {
        /// Waiting for its first attempt.
        Pending = "pending",
        /// Ordered (`per_key`): waiting for the delivery before it, of the
        /// same subscription and ordering key, to finish.
        Held = "held",
        /// Claimed by a worker under a lease.
        InFlight = "in_flight",
        /// Failed; waiting for its next attempt.
        Scheduled = "scheduled",
        /// A receiver answered 2xx.
        Delivered = "delivered",
        /// Attempts exhausted (or not deliverable): a dead letter.
        Dead = "dead",
        /// Parked: endpoint paused, disabled or circuit open; attempts not
        /// consumed.
        Paused = "paused",
        /// A plugin decided not to send it (the reason is its last error).
        Dropped = "dropped",
    }
}

impl DeliveryState {
    /// Whether nothing more will happen to it (short of a replay).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Dead | Self::Dropped)
    }
}

named_enum! {
    /// Whether an endpoint receives deliveries.
    SubscriptionStatus, "subscription status" {
        /// Deliveries flow (unless its circuit is open).
        Active = "active",
        /// Paused by an operator: deliveries are parked.
        Paused = "paused",
        /// Disabled by an operator, a 410 Gone or a sustained failure
        /// window: deliveries are parked.
        Disabled = "disabled",
    }
}

named_enum! {
    /// An endpoint's circuit breaker.
    CircuitState, "circuit state" {
        /// Deliveries flow; consecutive failures are counted.
        Closed = "closed",
        /// Too many failures: deliveries are parked until the cooldown ends.
        Open = "open",
        /// Cooldown over: one probe delivery decides.
        HalfOpen = "half_open",
    }
}

named_enum! {
    /// Whether a subscription's deliveries of one ordering key go one at a
    /// time, in order.
    Ordering, "ordering" {
        /// Deliveries go as they come, retries included (the default).
        None = "none",
        /// One delivery per ordering key at a time, in the order the events
        /// were accepted.
        PerKey = "per_key",
    }
}

named_enum! {
    /// What an ordered key does when its head delivery dies.
    OnDead, "ordering_on_dead" {
        /// The next delivery goes; the dead one stays a dead letter.
        Skip = "skip",
        /// The key waits until the dead head is replayed and delivered, or
        /// purged.
        Block = "block",
    }
}

named_enum! {
    /// Which Standard Webhooks signatures a delivery carries in
    /// `webhook-signature`.
    SignatureScheme, "signature_scheme" {
        /// HMAC-SHA256 with the subscription's secret (the default).
        V1 = "v1",
        /// ed25519 with the subscription's key pair; receivers verify with
        /// its public key (`public_key`).
        V1a = "v1a",
        /// Both, space-separated: receivers of either kind verify.
        #[serde(rename = "v1+v1a")]
        Both = "v1+v1a",
    }
}

impl SignatureScheme {
    /// For serde: views written before v1a existed read as `v1`.
    pub fn default_v1() -> Self {
        Self::V1
    }

    /// Whether it signs with the HMAC secret (`v1`).
    pub fn hmac(self) -> bool {
        matches!(self, Self::V1 | Self::Both)
    }

    /// Whether it signs with the ed25519 key (`v1a`).
    pub fn ed25519(self) -> bool {
        matches!(self, Self::V1a | Self::Both)
    }
}

impl Ordering {
    /// For serde: views written before ordering existed read as `none`.
    pub fn default_none() -> Self {
        Self::None
    }
}

impl OnDead {
    /// For serde: views written before ordering existed read as `skip`.
    pub fn default_skip() -> Self {
        Self::Skip
    }
}

/// A name that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState {
    /// Which enum was being read (`"delivery state"`, …).
    pub what: &'static str,
    /// The value found.
    pub value: String,
}

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.value)
    }
}

impl std::error::Error for UnknownState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for s in DeliveryState::ALL {
            assert_eq!(s.as_str().parse::<DeliveryState>(), Ok(*s));
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!("half_open".parse(), Ok(CircuitState::HalfOpen));
        let err = "sleeping".parse::<SubscriptionStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown subscription status \"sleeping\"");
    }
}
