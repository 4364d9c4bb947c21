//! The operator's configuration of real rails: validated against the rail's
//! spec ([`malipo_rails::config`]), credentials sealed under the master key
//! before they reach the store. The operator API and the CLI both come
//! through here.

use std::collections::BTreeMap;

use malipo_core::{MasterKey, MerchantId, SealError, Timestamp};
use malipo_rails::config::{self, ConfigProblem};
use malipo_store::{RailConfigRecord, SaveRailConfig, Store, StoreError};

/// A change to one owner's configuration of one rail. `None` keeps what is
/// stored (for a new configuration: nothing, or enabled).
#[derive(Debug, Clone)]
pub struct RailConfigChange {
    /// `None`: the platform's configuration.
    pub merchant_id: Option<MerchantId>,
    pub rail: String,
    /// The whole set, replacing the stored settings.
    pub settings: Option<BTreeMap<String, String>>,
    /// The whole set, replacing the stored credentials.
    pub credentials: Option<BTreeMap<String, String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum RailConfigError {
    #[error("`{0}` is not a rail that takes a configuration")]
    UnknownRail(String),
    #[error("{}", .0.message)]
    Invalid(ConfigProblem),
    #[error("the stored credentials do not open under this master key")]
    DoesNotOpen,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates and stores the change (audited as `actor`).
pub async fn save(
    store: &Store,
    master_key: &MasterKey,
    change: RailConfigChange,
    actor: &str,
    now: Timestamp,
) -> Result<RailConfigRecord, RailConfigError> {
    let spec = config::spec(&change.rail)
        .ok_or_else(|| RailConfigError::UnknownRail(change.rail.clone()))?;
    let stored = store
        .rail_config_of(change.merchant_id, &change.rail)
        .await?;
    let settings = match (change.settings, &stored) {
        (Some(settings), _) => settings,
        (None, Some(stored)) => stored.settings.clone(),
        (None, None) => BTreeMap::new(),
    };
    let credentials = match (change.credentials, &stored) {
        (Some(credentials), _) => credentials,
        (None, Some(stored)) => open_credentials(master_key, stored)?,
        (None, None) => BTreeMap::new(),
    };
    spec.validate(&settings, &credentials)
        .map_err(RailConfigError::Invalid)?;
    let sealed = master_key.seal(
        serde_json::to_string(&credentials)
            .expect("a map of strings serializes")
            .as_bytes(),
    );
    let save = SaveRailConfig {
        merchant_id: change.merchant_id,
        rail: spec.rail.to_owned(),
        settings,
        credentials_sealed: sealed,
        credential_names: credentials.keys().cloned().collect(),
        enabled: change
            .enabled
            .unwrap_or(stored.as_ref().is_none_or(|stored| stored.enabled)),
    };
    Ok(store.save_rail_config(&save, actor, now).await?)
}

/// The configuration's credentials, opened: for the connector that uses
/// them, never for display.
pub fn open_credentials(
    master_key: &MasterKey,
    record: &RailConfigRecord,
) -> Result<BTreeMap<String, String>, RailConfigError> {
    let plain = master_key
        .open(&record.credentials_sealed)
        .map_err(|_: SealError| RailConfigError::DoesNotOpen)?;
    serde_json::from_slice(&plain).map_err(|_| RailConfigError::DoesNotOpen)
}
