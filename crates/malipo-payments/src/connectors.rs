//! The real rails' connectors, one per stored configuration: a merchant's
//! own configuration of a rail, or else the platform's (issue 9's
//! `rail_configs`), its credentials opened under the master key only here.
//! A connector keeps its operator token between calls, so connectors are
//! cached, and rebuilt when their configuration changes.
//!
//! Test mode never reaches here: it always uses the simulator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use malipo_core::{MasterKey, MerchantId, RailConfigId, Timestamp};
use malipo_rails::Rail;
use malipo_rails::connector::ConnectorOptions;
use malipo_rails::mpesa::{Mpesa, MpesaConfig};
use malipo_store::{RailConfigRecord, Store, StoreError};

/// The rails Malipo has a connector for.
pub const CONNECTED_RAILS: &[&str] = &[
    malipo_rails::mpesa::ID,
    malipo_rails::mtn::ID,
    malipo_rails::airtel::ID,
];

/// A connector, and the configuration version (`updated_at`) it was built of.
type Built = (Timestamp, Arc<dyn Rail>);

pub struct Connectors {
    store: Store,
    master_key: MasterKey,
    options: ConnectorOptions,
    public_url: String,
    built: Mutex<HashMap<RailConfigId, Built>>,
    /// Connectors with no configuration, only to read callbacks (which
    /// need no credentials).
    readers: Mutex<HashMap<String, Arc<dyn Rail>>>,
}

impl Connectors {
    pub fn new(
        store: Store,
        master_key: MasterKey,
        options: ConnectorOptions,
        public_url: String,
    ) -> Self {
        Self {
            store,
            master_key,
            options,
            public_url,
            built: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        }
    }

    fn inbound_url(&self, rail: &str) -> String {
        format!(
            "{}/v1/inbound/{}",
            self.public_url,
            malipo_rails::callback_segment(rail)
        )
    }

    fn build(
        &self,
        rail: &str,
        settings: &std::collections::BTreeMap<String, String>,
        credentials: &std::collections::BTreeMap<String, String>,
    ) -> Result<Arc<dyn Rail>, String> {
        match rail {
            malipo_rails::mpesa::ID => Ok(Arc::new(Mpesa::new(
                MpesaConfig::from_maps(settings, credentials)?,
                &self.options,
                self.inbound_url(rail),
            ))),
            malipo_rails::mtn::ID => Ok(Arc::new(malipo_rails::mtn::Mtn::new(
                malipo_rails::mtn::MtnConfig::from_maps(settings, credentials)?,
                &self.options,
            ))),
            malipo_rails::airtel::ID => Ok(Arc::new(malipo_rails::airtel::Airtel::new(
                malipo_rails::airtel::AirtelConfig::from_maps(settings, credentials)?,
                &self.options,
            ))),
            other => Err(format!("Malipo has no connector for `{other}` yet")),
        }
    }

    /// The merchant's connector for `rail`: its own enabled configuration,
    /// else the platform's. `Ok(None)`: not configured (or disabled).
    pub async fn for_merchant(
        &self,
        merchant: MerchantId,
        rail: &str,
    ) -> Result<Option<Arc<dyn Rail>>, StoreError> {
        Ok(self
            .store
            .effective_rail_config(merchant, rail)
            .await?
            .and_then(|config| self.connector(&config)))
    }

    /// The connector of one stored configuration (`None`: its credentials
    /// do not open, or it cannot make one; logged).
    pub fn connector(&self, config: &RailConfigRecord) -> Option<Arc<dyn Rail>> {
        if let Some((updated, connector)) = self.built.lock().expect("connectors").get(&config.id)
            && *updated == config.updated_at
        {
            return Some(connector.clone());
        }
        let credentials = match crate::rail_configs::open_credentials(&self.master_key, config) {
            Ok(credentials) => credentials,
            Err(error) => {
                tracing::error!(config = %config.id, %error, "a rail configuration's credentials do not open");
                return None;
            }
        };
        match self.build(&config.rail, &config.settings, &credentials) {
            Ok(connector) => {
                self.built
                    .lock()
                    .expect("connectors")
                    .insert(config.id, (config.updated_at, connector.clone()));
                Some(connector)
            }
            Err(error) => {
                tracing::error!(config = %config.id, %error, "a rail configuration cannot make a connector");
                None
            }
        }
    }

    /// A connector that only reads `rail`'s callbacks.
    pub fn reader(&self, rail: &str) -> Option<Arc<dyn Rail>> {
        let mut readers = self.readers.lock().expect("readers");
        if let Some(reader) = readers.get(rail) {
            return Some(reader.clone());
        }
        // Enough of a configuration to build one; reading needs no more.
        let settings = [
            ("shortcode".to_owned(), "000000".to_owned()),
            ("target_environment".to_owned(), "sandbox".to_owned()),
        ]
        .into();
        let reader = self.build(rail, &settings, &Default::default()).ok()?;
        readers.insert(rail.to_owned(), reader.clone());
        Some(reader)
    }

    /// The connectors the merchant can use live: every connected rail with
    /// an enabled configuration (one read for them all).
    pub async fn configured(&self, merchant: MerchantId) -> Result<Vec<Arc<dyn Rail>>, StoreError> {
        Ok(self
            .store
            .effective_rail_configs(merchant)
            .await?
            .iter()
            .filter(|config| CONNECTED_RAILS.contains(&config.rail.as_str()))
            .filter_map(|config| self.connector(config))
            .collect())
    }
}
