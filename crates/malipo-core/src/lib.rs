//! Malipo's pure core: the types every other crate speaks in.
//!
//! Nothing here does IO. Money, prefixed ids, modes, scopes, the clock and
//! API-key tokens are plain values with their invariants checked at
//! construction ("parse, don't validate").

pub mod audit;
pub mod clock;
pub mod direction;
pub mod fees;
pub mod fx;
pub mod id;
pub mod jwt;
pub mod key_token;
pub mod mode;
pub mod money;
pub mod payment;
pub mod phone;
pub mod reference_number;
pub mod scope;
pub mod sealing;
pub mod time_zone;
pub mod totp;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use direction::Direction;
pub use fees::{FeeBreakdown, FeeError, FeePayer, FeeSchedule};
pub use fx::{FxError, Rate};
pub use id::{
    AccountId, ApiKeyId, AuditEventId, ChargebackId, CheckoutId, EntityId, EventId, FeeScheduleId,
    FxRateId, IdParseError, InboundId, JobId, MerchantId, OAuthClientId, PaymentId,
    PaymentReferenceId, PayoutId, PlanId, PlanProductId, RailConfigId, ReferencePaymentId,
    RefundId, RequestId, ReserveHoldId, SettlementId, TestClockId, TransferId, UserId,
    WebhookAttemptId, WebhookEndpointId, WebhookSecretId,
};
pub use key_token::{KeyToken, KeyTokenError, SecretHash};
pub use mode::Mode;
pub use money::{Currency, Money, MoneyError};
pub use payment::PaymentStatus;
pub use phone::{Country, Phone, PhoneError};
pub use scope::{Access, Scope, ScopeFamily, ScopeParseError, Scopes};
pub use sealing::{MasterKey, SealError};
pub use time_zone::TimeZone;
