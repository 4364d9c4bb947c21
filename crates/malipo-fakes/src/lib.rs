//! Local fakes of the mobile-money operators' APIs. Each is a real HTTP
//! server implementing the operator's documented endpoints, headers, auth,
//! payload shapes, result codes and callback behaviour, quirks included,
//! so that Malipo's connectors (and the operators' own published client
//! libraries) can be tested on a machine that cannot reach the operators.
//! `malipo fake-rail <rail> --port …` runs one for a developer.
//!
//! Every fake picks a transaction's outcome from the last four digits of
//! the customer's phone number (see [`triggers`]), so a test chooses what
//! happens by the number it uses, as with the built-in simulator.

pub mod airtel;
pub mod mpesa;
pub mod mtn;
pub mod serving;
pub mod triggers;
