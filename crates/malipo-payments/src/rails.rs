use std::collections::BTreeMap;
use std::sync::Arc;

use malipo_core::{MerchantId, Mode, Phone};
use malipo_rails::{Rail, routing};

/// The rails this instance can use, by id.
#[derive(Clone, Default)]
pub struct Rails {
    by_id: BTreeMap<&'static str, Arc<dyn Rail>>,
}

/// The rail every test key uses.
pub const SIMULATOR: &str = malipo_rails::simulator::Simulator::ID;

impl Rails {
    pub fn with(mut self, rail: Arc<dyn Rail>) -> Self {
        self.by_id.insert(rail.capabilities().id, rail);
        self
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Rail>> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Rail>> {
        self.by_id.values()
    }

    /// The rail for a payment: test mode always uses the simulator; live
    /// mode a real rail that serves the number's country, never the simulator.
    pub fn choose(
        &self,
        mode: Mode,
        requested: Option<&str>,
        phone: Option<&Phone>,
    ) -> Result<&'static str, String> {
        if mode == Mode::Test {
            return match requested {
                None | Some(SIMULATOR) => Ok(SIMULATOR),
                Some(other) if self.by_id.contains_key(other) => Ok(SIMULATOR),
                Some(other) => Err(format!("there is no rail `{other}`")),
            };
        }
        let live = self
            .by_id
            .values()
            .filter(|rail| rail.capabilities().id != SIMULATOR);
        let serving: Vec<&Arc<dyn Rail>> = match phone {
            Some(phone) => live
                .filter(|rail| rail.capabilities().countries.contains(&phone.country.code))
                .collect(),
            None => live.collect(),
        };
        match requested {
            Some(id) => serving
                .iter()
                .find(|rail| rail.capabilities().id == id)
                .map(|rail| rail.capabilities().id)
                .ok_or_else(|| format!("the rail `{id}` is not available for live payments here")),
            None => serving
                .first()
                .map(|rail| rail.capabilities().id)
                .ok_or_else(|| "no live rail is configured for this country yet".to_owned()),
        }
    }
}

impl crate::Payments {
    /// The rail a new payment or payout goes over, ready to call: test mode
    /// the simulator; live mode the rail asked for, else the one of the
    /// number's operator (`malipo_rails::routing`), among the rails the
    /// merchant has configured (its own configuration, else the
    /// platform's). The error says why none serves.
    pub async fn chosen_rail(
        &self,
        merchant: MerchantId,
        mode: Mode,
        requested: Option<&str>,
        phone: Option<&Phone>,
    ) -> Result<Arc<dyn Rail>, String> {
        let static_choice = self
            .rails
            .choose(mode, requested, phone)
            .map(|id| self.rails.get(id).cloned().expect("a chosen rail exists"));
        if mode == Mode::Test {
            return static_choice;
        }
        let configured = self
            .connectors
            .configured(merchant)
            .await
            .map_err(|error| {
                tracing::error!(%error, "reading the merchant's rail configurations");
                "the rail configurations could not be read; try again".to_owned()
            })?;
        let connector = |id: &str| {
            configured
                .iter()
                .find(|connector| connector.capabilities().id == id)
                .cloned()
        };
        let wanted = match (requested, phone.and_then(routing::operator_of)) {
            (Some(id), _) => connector(id).ok_or_else(|| {
                format!("the rail `{id}` is not configured for this merchant's live payments")
            }),
            (None, Some(operator)) => match operator.rail {
                Some(id) => connector(id).ok_or_else(|| {
                    format!(
                        "{} numbers ({}) go over the `{id}` rail, which is not configured for this merchant",
                        operator.name, operator.wallet
                    )
                }),
                None => Err(format!(
                    "{} ({}) has no connector in Malipo yet",
                    operator.wallet, operator.name
                )),
            },
            (None, None) if phone.is_some() => {
                Err("no mobile-money operator is known for this number".to_owned())
            }
            (None, None) => configured
                .first()
                .cloned()
                .ok_or_else(|| "no live rail is configured for this merchant".to_owned()),
        };
        // A rail registered in process (tests) still serves.
        wanted.or_else(|reason| static_choice.map_err(|_| reason))
    }

    /// The rail of a transaction already made, to query it or send it:
    /// the simulator, or the merchant's connector. `None`: no longer
    /// configured.
    pub async fn rail_of(
        &self,
        merchant: MerchantId,
        mode: Mode,
        rail: &str,
    ) -> Result<Option<Arc<dyn Rail>>, malipo_store::StoreError> {
        if let Some(rail) = self.rails.get(rail) {
            return Ok(Some(rail.clone()));
        }
        if mode == Mode::Test {
            return Ok(None);
        }
        self.connectors.for_merchant(merchant, rail).await
    }

    /// A rail that can read `rail`'s callbacks (they need no credentials).
    pub fn callback_reader(&self, rail: &str) -> Option<Arc<dyn Rail>> {
        self.rails
            .get(rail)
            .cloned()
            .or_else(|| self.connectors.reader(rail))
    }
}
