use std::collections::BTreeMap;
use std::sync::Arc;

use malipo_core::{Mode, Phone};
use malipo_rails::Rail;

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
