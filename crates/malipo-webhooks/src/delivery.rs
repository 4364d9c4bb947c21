//! The delivery worker: a pipeline, so one slow endpoint never holds up
//! the rest.
//!
//! - The dispatcher leases due deliveries (as many as there are free
//!   slots), loads their events and endpoints in two queries, and starts
//!   one task per attempt.
//! - Each task signs and POSTs its event and hands the outcome to the
//!   recorder.
//! - The recorder writes outcomes in group commits: the log, the next
//!   attempt, endpoint health, all in one transaction per batch.
//!
//! A worker that dies mid-attempt leaves its lease to run out; another
//! worker then makes the attempt again (at least once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use malipo_core::{Timestamp, WebhookAttemptId, WebhookEndpointId};
use malipo_store::{AttemptOutcome, Batcher, DeliveryClaim, DeliveryTarget, EventRecord};
use reqwest::StatusCode;
use tokio::sync::{Semaphore, watch};

use crate::guard::{self, GuardedResolver, UrlPolicy};
use crate::{Webhooks, WebhooksConfig, render_endpoint, signature};

/// Deliveries leased per query.
const CLAIM_BATCH_MAX: usize = 512;
/// The share of the worker's slots one endpoint may hold (a quarter): a
/// slow or hanging endpoint then ties up only so many, never all of them.
const ENDPOINT_SHARE_DIVISOR: usize = 4;
/// Outcomes written per commit, and how many may wait for one.
const RECORD_BATCH_MAX: usize = 1_024;
const RECORD_QUEUE_MAX: usize = 16_384;
/// The longest the dispatcher sleeps when idle: deliveries queued by other
/// nodes, and retries falling due, are found within this.
const IDLE_WAIT_MS: u64 = 250;
/// A lease outlives the attempt's timeout by this much, so it only runs
/// out when its worker is gone.
const LEASE_MARGIN_MS: i64 = 30_000;
/// Bytes of a response body kept in the delivery log.
const RESPONSE_EXCERPT_BYTES: usize = 1_024;
/// `Retry-After` is honoured up to this.
const RETRY_AFTER_MAX_MS: i64 = 24 * 60 * 60 * 1_000;
const USER_AGENT: &str = concat!("Malipo-Webhooks/", env!("CARGO_PKG_VERSION"));

/// HTTP clients: one that may reach local addresses (test mode, when the
/// operator allows it) and one that never does.
#[derive(Clone)]
pub(crate) struct Clients {
    strict: reqwest::Client,
    permissive: reqwest::Client,
}

impl Clients {
    pub(crate) fn new(config: &WebhooksConfig) -> Self {
        crate::install_tls_provider();
        let build = |policy: UrlPolicy| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_millis(config.timeout_ms))
                .connect_timeout(Duration::from_millis(config.timeout_ms))
                .pool_idle_timeout(Duration::from_secs(30))
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver::new(policy)))
                .build()
                .expect("the HTTP client's settings are valid")
        };
        Self {
            strict: build(UrlPolicy::STRICT),
            permissive: build(UrlPolicy::PERMISSIVE),
        }
    }

    fn for_policy(&self, policy: UrlPolicy) -> &reqwest::Client {
        if policy.strict {
            &self.strict
        } else {
            &self.permissive
        }
    }
}

/// Delivers until `stopped` turns true, then lets attempts in flight finish.
pub async fn run(webhooks: Webhooks, mut stopped: watch::Receiver<bool>) {
    let concurrency = webhooks.config.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let recorder = spawn_recorder(&webhooks);
    let in_flight = InFlight::new(concurrency);
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                permit = slots.acquire() => drop(permit),
                _ = stopped.changed() => {}
            }
            continue;
        }
        let started = match dispatch(&webhooks, &slots, &recorder, &in_flight, free).await {
            Ok(started) => started,
            Err(error) => {
                tracing::warn!(error = %error, "could not lease webhook deliveries");
                0
            }
        };
        if started > 0 {
            continue;
        }
        tokio::select! {
            _ = webhooks.store.deliveries_queued() => {}
            _ = tokio::time::sleep(Duration::from_millis(IDLE_WAIT_MS)) => {}
            _ = stopped.changed() => {}
        }
    }
    // Wait for the attempts in flight, so their outcomes are written.
    let _ = slots.acquire_many(concurrency as u32).await;
}

/// Attempts to each endpoint: at most `running_max` at once, and as many
/// again waiting their turn; an endpoint with that many is left out of the
/// next claims. A slow or hanging endpoint thus holds at most half of the
/// worker's slots, and the rest keep flowing.
#[derive(Clone)]
struct InFlight {
    entries: Arc<std::sync::Mutex<HashMap<WebhookEndpointId, EndpointSlots>>>,
    running_max: usize,
}

struct EndpointSlots {
    running: Arc<Semaphore>,
    /// Tasks for the endpoint: running or waiting.
    tasks: usize,
}

impl InFlight {
    fn new(concurrency: usize) -> Self {
        Self {
            entries: Arc::default(),
            running_max: (concurrency / ENDPOINT_SHARE_DIVISOR).max(1),
        }
    }

    /// A task for an attempt to `endpoint`: the semaphore it must then
    /// hold while attempting, or `None` if the endpoint has enough already.
    fn admit(&self, endpoint: WebhookEndpointId) -> Option<Arc<Semaphore>> {
        let mut entries = self.entries.lock().expect("not poisoned");
        let entry = entries.entry(endpoint).or_insert_with(|| EndpointSlots {
            running: Arc::new(Semaphore::new(self.running_max)),
            tasks: 0,
        });
        if entry.tasks >= 2 * self.running_max {
            return None;
        }
        entry.tasks += 1;
        Some(entry.running.clone())
    }

    fn done(&self, endpoint: WebhookEndpointId) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if let Some(entry) = entries.get_mut(&endpoint) {
            entry.tasks -= 1;
            if entry.tasks == 0 {
                entries.remove(&endpoint);
            }
        }
    }

    /// The endpoints with all the tasks they may have.
    fn full(&self) -> Vec<WebhookEndpointId> {
        let entries = self.entries.lock().expect("not poisoned");
        entries
            .iter()
            .filter(|(_, entry)| entry.tasks >= 2 * self.running_max)
            .map(|(endpoint, _)| *endpoint)
            .collect()
    }
}

/// Leases up to `free` due deliveries and starts them; returns how many.
async fn dispatch(
    webhooks: &Webhooks,
    slots: &Arc<Semaphore>,
    recorder: &Recorder,
    in_flight: &InFlight,
    free: usize,
) -> Result<usize, malipo_store::StoreError> {
    let now = webhooks.clock.now();
    let lease_ms = webhooks.config.timeout_ms as i64 * 2 + LEASE_MARGIN_MS;
    let claims = webhooks
        .store
        .claim_deliveries(
            now,
            lease_ms,
            free.min(CLAIM_BATCH_MAX) as u32,
            &in_flight.full(),
        )
        .await?;
    if claims.is_empty() {
        return Ok(0);
    }
    let mut admitted = Vec::with_capacity(claims.len());
    let mut deferred = Vec::new();
    for claim in claims {
        match in_flight.admit(claim.endpoint_id) {
            Some(running) => admitted.push((claim, running)),
            None => deferred.push(claim),
        }
    }
    // More than the endpoint may have: back to the queue, as they were.
    webhooks.store.release_deliveries(&deferred, now).await?;
    let (events, targets) = load(webhooks, admitted.iter().map(|(claim, _)| claim), now).await?;
    let count = admitted.len();
    for (claim, running) in admitted {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let event = events.get(&claim.event_id).cloned();
        let target = targets.get(&claim.endpoint_id).cloned();
        let webhooks = webhooks.clone();
        let recorder = recorder.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let endpoint = claim.endpoint_id;
            let outcome = {
                let _turn = running.acquire().await.expect("never closed");
                attempt(&webhooks, claim, event.as_deref(), target.as_ref()).await
            };
            in_flight.done(endpoint);
            if let Err(error) = recorder.submit(outcome).await {
                // The lease runs out and the attempt is made again.
                tracing::warn!(error = %error, "could not record a webhook attempt");
            }
            drop(permit);
        });
    }
    Ok(count)
}

type Loaded = (
    HashMap<malipo_core::EventId, Arc<EventRecord>>,
    HashMap<malipo_core::WebhookEndpointId, DeliveryTarget>,
);

async fn load(
    webhooks: &Webhooks,
    claims: impl Iterator<Item = &DeliveryClaim>,
    now: Timestamp,
) -> Result<Loaded, malipo_store::StoreError> {
    let (mut event_ids, mut endpoint_ids): (Vec<_>, Vec<_>) =
        claims.map(|c| (c.event_id, c.endpoint_id)).unzip();
    event_ids.sort_unstable();
    event_ids.dedup();
    endpoint_ids.sort_unstable();
    endpoint_ids.dedup();
    let events = webhooks
        .store
        .find_events(&event_ids)
        .await?
        .into_iter()
        .map(|event| (event.id, Arc::new(event)))
        .collect();
    let targets = webhooks.store.delivery_targets(&endpoint_ids, now).await?;
    Ok((events, targets))
}

type Recorder = Batcher<AttemptOutcome, ()>;

fn spawn_recorder(webhooks: &Webhooks) -> Recorder {
    let webhooks = webhooks.clone();
    Batcher::spawn(
        "webhook attempts",
        RECORD_BATCH_MAX,
        RECORD_QUEUE_MAX,
        move |outcomes: Vec<AttemptOutcome>| {
            let webhooks = webhooks.clone();
            async move {
                let count = outcomes.len();
                webhooks
                    .store
                    .record_attempts(
                        &outcomes,
                        webhooks.config.disable_after_ms,
                        &render_endpoint,
                        webhooks.clock.now(),
                    )
                    .await?;
                Ok(vec![(); count])
            }
        },
    )
}

/// What one HTTP attempt came to, before it is judged.
struct Response {
    status: Option<StatusCode>,
    retry_after_ms: Option<i64>,
    body: Option<String>,
    error: Option<String>,
}

/// Makes one attempt and judges it.
async fn attempt(
    webhooks: &Webhooks,
    claim: DeliveryClaim,
    event: Option<&EventRecord>,
    target: Option<&DeliveryTarget>,
) -> AttemptOutcome {
    let attempted_at = webhooks.clock.now();
    let started = Instant::now();
    let response = match (event, target) {
        (Some(event), Some(target)) => send(webhooks, event, target).await,
        _ => Response {
            status: None,
            retry_after_ms: None,
            body: None,
            error: Some("the event or endpoint no longer exists".to_owned()),
        },
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let succeeded = response.status.is_some_and(|s| s.is_success());
    let gone = response.status == Some(StatusCode::GONE);
    let endpoint_disabled = target.is_some_and(|t| t.endpoint.disabled_at.is_some());
    let next_attempt_at = if succeeded || gone || endpoint_disabled || target.is_none() {
        None
    } else {
        next_attempt(
            &webhooks.config,
            claim.attempt,
            attempted_at,
            response.retry_after_ms,
        )
    };
    if !succeeded {
        tracing::info!(
            event_id = %claim.event_id,
            endpoint_id = %claim.endpoint_id,
            attempt = claim.attempt,
            status = response.status.map(|s| s.as_u16()),
            error = response.error.as_deref(),
            retry = next_attempt_at.is_some(),
            "webhook attempt failed"
        );
    }
    AttemptOutcome {
        claim,
        attempt_id: WebhookAttemptId::generate(),
        attempted_at,
        latency_ms,
        status_code: response.status.map(|s| i64::from(s.as_u16())),
        response_body: response.body,
        error: response.error,
        succeeded,
        next_attempt_at,
        gone,
    }
}

async fn send(webhooks: &Webhooks, event: &EventRecord, target: &DeliveryTarget) -> Response {
    let failed = |error: String| Response {
        status: None,
        retry_after_ms: None,
        body: None,
        error: Some(error),
    };
    if target.endpoint.disabled_at.is_some() {
        return failed("the endpoint is disabled".to_owned());
    }
    let policy = webhooks.policy(target.endpoint.mode);
    // Checked again on every attempt: IP literals never reach the resolver.
    let url = match guard::check_url(&target.endpoint.url, policy) {
        Ok(url) => url,
        Err(error) => return failed(format!("refused by the SSRF guard: {error}")),
    };
    let secrets: Vec<String> = target
        .sealed_secrets
        .iter()
        .filter_map(|sealed| webhooks.unseal_secret(sealed))
        .collect();
    if secrets.is_empty() {
        return failed("the endpoint has no signing secret".to_owned());
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let body = event.to_json();
    let timestamp = webhooks.clock.now().unix_ms().div_euclid(1_000);
    let signed = signature::sign(&secrets, &event.id.to_string(), timestamp, body.as_bytes());
    let mut request = webhooks
        .clients
        .for_policy(policy)
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let mut response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => return failed(describe(&error)),
    };
    let status = response.status();
    let retry_after_ms = matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
    .then(|| retry_after_ms(response.headers(), webhooks.clock.now()))
    .flatten();
    let mut excerpt = Vec::new();
    let mut error = None;
    while excerpt.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
            Ok(None) => break,
            // The status is what counts; a body cut short is only noted.
            Err(e) => {
                error = Some(format!("reading the response: {}", describe(&e)));
                break;
            }
        }
    }
    excerpt.truncate(RESPONSE_EXCERPT_BYTES);
    Response {
        status: Some(status),
        retry_after_ms,
        body: Some(String::from_utf8_lossy(&excerpt).into_owned()),
        error,
    }
}

/// A reqwest error in words a merchant can act on.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_redirect() {
        "redirects are not followed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds or as an HTTP date, as milliseconds from now.
fn retry_after_ms(headers: &reqwest::header::HeaderMap, now: Timestamp) -> Option<i64> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let ms = match value.parse::<i64>() {
        Ok(seconds) => seconds.checked_mul(1_000)?,
        Err(_) => {
            let at =
                time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
                    .ok()?;
            Timestamp::from_offset_date_time(at).unix_ms() - now.unix_ms()
        }
    };
    Some(ms.clamp(0, RETRY_AFTER_MAX_MS))
}

/// When to try after failed attempt number `attempt` (from 1), or `None`
/// if it was the last.
pub fn next_attempt(
    config: &WebhooksConfig,
    attempt: i64,
    now: Timestamp,
    retry_after_ms: Option<i64>,
) -> Option<Timestamp> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let wait = *config.retry_schedule_ms.get(index)?;
    let jitter = jitter_ms(wait, config.jitter_percent);
    let wait = (wait + jitter).max(retry_after_ms.unwrap_or(0));
    Some(now.plus_ms(wait))
}

/// Up to `percent`% of `wait`, at random.
fn jitter_ms(wait: i64, percent: u32) -> i64 {
    let span = wait.saturating_mul(i64::from(percent)) / 100;
    if span <= 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    (u64::from_le_bytes(bytes) % span as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_three_days_and_then_stops() {
        let config = WebhooksConfig {
            jitter_percent: 0,
            ..WebhooksConfig::default()
        };
        let mut at = Timestamp::from_unix_ms(0);
        let mut attempts = 1;
        while let Some(next) = next_attempt(&config, attempts, at, None) {
            at = next;
            attempts += 1;
        }
        assert_eq!(attempts, 10);
        let hours = at.unix_ms() as f64 / 3_600_000.0;
        assert!((72.0..80.0).contains(&hours), "{hours} h");
    }

    #[test]
    fn jitter_only_lengthens_and_retry_after_can_lengthen_further() {
        let config = WebhooksConfig::default();
        let now = Timestamp::from_unix_ms(1_000);
        for _ in 0..100 {
            let next = next_attempt(&config, 2, now, None).unwrap().unix_ms() - 1_000;
            assert!((300_000..=330_000).contains(&next), "{next}");
        }
        let next = next_attempt(&config, 1, now, Some(60_000)).unwrap();
        assert_eq!(next.unix_ms(), 61_000);
    }

    #[test]
    fn one_endpoint_gets_a_bounded_share_of_the_slots() {
        let in_flight = InFlight::new(128);
        let slow = WebhookEndpointId::generate();
        let other = WebhookEndpointId::generate();
        let admitted: Vec<_> = (0..100).filter_map(|_| in_flight.admit(slow)).collect();
        assert_eq!(admitted.len(), 64, "32 running and 32 waiting");
        assert_eq!(admitted[0].available_permits(), 32);
        assert_eq!(in_flight.full(), vec![slow]);
        assert!(
            in_flight.admit(other).is_some(),
            "other endpoints still get slots"
        );
        in_flight.done(slow);
        assert!(
            in_flight.admit(slow).is_some(),
            "a finished attempt frees its place"
        );
        assert!(in_flight.admit(slow).is_none());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = Timestamp::from_unix_ms(1_700_000_000_000);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after_ms(&headers, now), Some(120_000));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Tue, 14 Nov 2023 22:13:27 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_ms(&headers, now), Some(7_000));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after_ms(&headers, now), None);
    }
}
