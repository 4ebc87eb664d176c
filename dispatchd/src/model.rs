//! Domain types shared by the store, the queue and the API.
//!
//! Nothing here knows SQL, HTTP or JSON wire shapes: the store maps rows to
//! these types and the api module maps them to `dispatch_wire` types.

use std::collections::BTreeMap;

pub use crate::secret::Secret;

/// Milliseconds since the Unix epoch: the one time unit stored everywhere.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 with milliseconds, UTC, as every API answer shows times.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The three state machines, defined once in `dispatch_wire` so the API
/// shows exactly the names the store writes.
pub use dispatch_wire::{CircuitState, DeliveryState, SubscriptionStatus};

/// How a subscription orders the deliveries of one key, and what a dead
/// head does: also defined once in `dispatch_wire`.
pub use dispatch_wire::{OnDead, Ordering, SignatureScheme};

/// Exponential backoff with jitter and a cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub initial_delay_ms: u64,
    pub multiplier: f64,
    pub max_delay_ms: u64,
}

/// A subscription: where matching events go and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub secret: Secret,
    /// The rotated-out secret, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<Secret>,
    pub previous_secret_expires_at: Option<Millis>,
    pub headers: BTreeMap<String, String>,
    pub rate_limit: Option<u32>,
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    pub timeout_ms: u64,
    pub plugins: Vec<String>,
    /// The tenant that owns it; `None` for a global subscription, which
    /// receives only tenant-less events.
    pub tenant_id: Option<String>,
    /// When set, it receives only events carrying one of these channels.
    pub channels: Option<Vec<String>>,
    /// `PerKey`: the deliveries of one ordering key go one at a time.
    pub ordering: Ordering,
    pub ordering_on_dead: OnDead,
    /// How its deliveries are signed and what credentials they present.
    pub egress: Egress,
    /// Paused by an operator; disabled by an operator, a 410 Gone, or a
    /// sustained failure window.
    pub status: SubscriptionStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Circuit breaker and disable reason: read-only here, written by the
    /// store as attempts complete.
    pub health: Health,
}

impl Subscription {
    /// The ordering key its delivery of an event carries: the event's,
    /// when this subscription orders per key.
    pub fn ordering_key_for(&self, event: &Event) -> Option<String> {
        match self.ordering {
            Ordering::PerKey => event.ordering_key.clone(),
            Ordering::None => None,
        }
    }
}

/// How deliveries leave for an endpoint: the signatures they carry and
/// the credentials they present.
#[derive(Debug, Clone, PartialEq)]
pub struct Egress {
    pub signature_scheme: SignatureScheme,
    /// The ed25519 key (`whsk_<base64 of its 32-byte seed>`), made when the
    /// scheme first signs `v1a`.
    pub signing_key: Option<Secret>,
    /// The key a rotation replaced, still signing until
    /// `Subscription::previous_secret_expires_at`.
    pub previous_signing_key: Option<Secret>,
    pub auth: Option<EndpointAuth>,
    pub tls: Option<TlsSettings>,
    /// Its own CONNECT proxy, instead of `delivery.proxy_url`.
    pub proxy_url: Option<String>,
}

/// TLS to one endpoint: a private CA to trust besides the system's roots,
/// and a client certificate with its key (mTLS). PEM, checked when
/// written (`deliver::check_tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_pem: Option<String>,
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<Secret>,
}

impl Default for Egress {
    fn default() -> Self {
        Self {
            signature_scheme: SignatureScheme::V1,
            signing_key: None,
            previous_signing_key: None,
            auth: None,
            tls: None,
            proxy_url: None,
        }
    }
}

/// Credentials presented to an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointAuth {
    Basic {
        username: String,
        password: Secret,
    },
    /// A bearer token fetched with OAuth2 client credentials
    /// (`deliver::oauth2`).
    OAuth2(OAuth2),
}

/// What an OAuth2 client-credentials token is fetched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    pub audience: Option<String>,
}

/// An endpoint's health as the store last recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub circuit_state: CircuitState,
    pub consecutive_failures: i32,
    pub circuit_opened_at: Option<Millis>,
    pub circuit_next_probe_at: Option<Millis>,
    pub last_success_at: Option<Millis>,
    pub disabled_reason: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            circuit_state: CircuitState::Closed,
            consecutive_failures: 0,
            circuit_opened_at: None,
            circuit_next_probe_at: None,
            last_success_at: None,
            disabled_reason: None,
        }
    }
}

/// Whether the row is a producer event or a DispatchGO task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Event,
    Task,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Task => "task",
        }
    }
}

/// An event as stored. `data` is the producer's JSON, byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    pub event_type: String,
    pub source: Option<String>,
    pub data: String,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
    /// The tenant it is for: it fans out only to that tenant's subscriptions.
    pub tenant_id: Option<String>,
    /// The channels it carries (empty: none).
    pub channels: Vec<String>,
    /// Its deliveries to a `per_key` subscription go in order with the
    /// other events of this key.
    pub ordering_key: Option<String>,
}

/// A tenant: one of the producer's customers.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub name: Option<String>,
    /// A JSON object, as the producer gave it.
    pub metadata: String,
    /// Events per second it may post; `None` when unlimited.
    pub rate_limit: Option<u32>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An entry of the event-type catalogue. `schema` and `example` are JSON
/// text, as the producer gave them (checked by the API when written).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventType {
    pub name: String,
    pub description: Option<String>,
    pub schema: Option<String>,
    pub deprecated: bool,
    pub example: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Something dispatchd must tell the subscribers of `dispatch.*` about,
/// as the outbox holds it until the emitter turns it into an event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxEntry {
    /// Its place in the outbox; the emitted event's id derives from it.
    pub seq: i64,
    /// The operational event type (`dispatch.delivery.dead`, …).
    pub kind: String,
    pub subscription_id: String,
    pub tenant_id: Option<String>,
    /// The dead delivery's event and its type.
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// A dead delivery's attempts, or the failures that opened a circuit.
    pub attempts: Option<i32>,
    /// The dead delivery's last error, or why the endpoint was disabled.
    pub detail: Option<String>,
    pub created_at: Millis,
}

/// A tenant's API token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantToken {
    pub id: String,
    pub tenant_id: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
}

/// What deleting a tenant took with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantRemoval {
    pub subscriptions: u64,
    pub tokens: u64,
    pub deliveries: u64,
}

/// A destination written with the delivery itself, winning over the
/// subscription's: a task's inline target, a router plugin's changed
/// destination, or the request a transform chain produced (then `body` is
/// set, and retries resend it as it is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InlineDestination {
    pub url: Option<String>,
    pub method: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub secret: Option<Secret>,
    pub body: Option<String>,
    /// The event type the receiver sees, when a plugin changed it.
    pub event_type: Option<String>,
}

/// One delivery to create with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub subscription_id: Option<String>,
    pub inline: InlineDestination,
    pub max_attempts: u32,
    /// Set for a `per_key` subscription and a keyed event: the delivery
    /// waits its turn behind the key's earlier ones.
    pub ordering_key: Option<String>,
    /// Created leased to the ingesting node (`Lessee`), which sends it from
    /// memory after the commit instead of claiming it. Routing marks the
    /// deliveries that may be (an active subscription at its own address,
    /// unordered); the committer keeps as many as it has free send slots
    /// for. A delivery created parked or held is not leased whatever this
    /// says, nor any without a `Lessee`.
    pub leased: bool,
}

/// Whom a group's `leased` deliveries are leased to, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Lessee<'a> {
    pub node: &'a str,
    pub lease_ms: i64,
}

/// A delivery created leased to the ingesting node: its row's fencing
/// token, and which event and subscription it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedDelivery {
    pub token: ClaimToken,
    pub max_attempts: i32,
    pub event_id: String,
    pub subscription_id: String,
}

/// What `insert_events` did: one outcome per event, and the deliveries it
/// created leased.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inserted {
    pub outcomes: Vec<InsertOutcome>,
    pub leased: Vec<LeasedDelivery>,
}

/// An event and the deliveries fan-out chose for it, ready to insert.
#[derive(Debug, Clone)]
pub struct RoutedEvent {
    pub event: Event,
    pub deliveries: Vec<NewDelivery>,
    /// Its place in the group's arrival order (a batch's items in their
    /// order): ordered deliveries of one key are sequenced by it.
    pub arrival: usize,
}

/// What the store did with one routed event.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// Stored with its deliveries.
    Inserted,
    /// An event with this id (or idempotency key) already exists: this one.
    Duplicate(Box<Event>),
    /// Not stored: its tenant does not exist in the snapshot the insert
    /// was checked against (decided by the committer, never the store).
    NoTenant,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: String,
    pub subscription_id: Option<String>,
    pub url: String,
    pub method: String,
    pub state: DeliveryState,
    pub run: i32,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Millis,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub delivered_at: Option<Millis>,
}

/// One HTTP attempt as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub event_id: String,
    pub subscription_id: Option<String>,
    pub run: i32,
    pub attempt: i32,
    pub url: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
    pub created_at: Millis,
}

/// A delivery a worker has claimed, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub run: i32,
    /// This attempt's number within the run (1 for the first).
    pub attempt: i32,
    /// How many times the delivery has been claimed: the fence. A lease
    /// handed back without using an attempt (its node died) is claimed
    /// again with the same attempt number, never the same claim number.
    pub claim: i32,
    pub max_attempts: i32,
    pub event: Event,
    /// `None` for tasks, or when the subscription was deleted meanwhile.
    pub subscription: Option<Subscription>,
    pub subscription_id: Option<String>,
    pub inline: InlineDestination,
}

/// The fencing token of a claim: a completion only applies while the row
/// still carries the same run, attempt and claim number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimToken {
    pub id: i64,
    pub run: i32,
    pub attempt: i32,
    pub claim: i32,
}

impl ClaimedDelivery {
    pub fn token(&self) -> ClaimToken {
        ClaimToken {
            id: self.id,
            run: self.run,
            attempt: self.attempt,
            claim: self.claim,
        }
    }
}

/// The next state a completed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextState {
    Delivered,
    /// Try again after this many milliseconds (measured on the store's clock).
    Retry {
        delay_ms: i64,
    },
    Dead,
    /// A plugin dropped it: final, nothing sent.
    Dropped,
}

/// Which dead letters an operator means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadFilter {
    pub subscription_id: Option<String>,
    /// Only dead letters of this tenant's events.
    pub tenant_id: Option<String>,
    pub event_type: Option<String>,
    /// Died at or after this time.
    pub since: Option<Millis>,
    /// Died before this time.
    pub until: Option<Millis>,
}

/// Dead letters by id, or all matching a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadSelection {
    /// These delivery ids; with a tenant, only those of its events.
    Ids(Vec<i64>, Option<String>),
    Filter(DeadFilter),
}

/// A dead delivery with its event's type, as the dead-letter list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub delivery: DeliveryRecord,
    pub event_type: String,
    pub tenant_id: Option<String>,
}

/// A finished attempt, written back in a batch.
#[derive(Debug, Clone)]
pub struct Completion {
    pub token: ClaimToken,
    pub next: NextState,
    pub attempt: AttemptRecord,
    /// Whether the endpoint was tried: only then does the outcome count
    /// for its circuit breaker (a plugin failure is not the endpoint's).
    pub reached_endpoint: bool,
    /// The request the subscription's plugins produced, stored with the
    /// outcome so later attempts resend it unchanged.
    pub transformed: Option<Box<InlineDestination>>,
}
