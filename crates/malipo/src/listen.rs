//! `malipo listen`: forwards a merchant's events from a running Malipo to a
//! local URL, signed exactly as webhook deliveries are, so a receiver can be
//! developed without a public URL or a webhook endpoint (like `stripe listen`).
//!
//! It follows `GET /v1/events/stream` (server-sent events) and POSTs each
//! event's JSON to `--forward-to`, printing one line per event.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use malipo_webhooks::signature;
use reqwest::{StatusCode, Url, header};
use serde::Deserialize;

/// How long a forward may take, as for real webhook deliveries.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// The server sends a keep-alive comment every 15 s, so this long without a
/// byte means the connection is dead even if TCP has not noticed.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to POST each event, e.g. http://localhost:3000/hooks.
    #[arg(long, value_name = "URL")]
    forward_to: String,

    /// A secret API key of the merchant with the `events:read` scope:
    /// a test key, `sk_test_…`.
    #[arg(
        long,
        env = "MALIPO_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: String,

    /// Allow a live key (`sk_live_…`): forward live-mode events.
    #[arg(long)]
    live: bool,

    /// The running Malipo.
    #[arg(
        long,
        env = "MALIPO_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "BASE"
    )]
    url: String,

    /// Only these event types, comma-separated: exact types
    /// (`payment.succeeded`), categories (`payment.*`) or `*`. Default: all.
    #[arg(long, value_delimiter = ',', value_name = "TYPE,...")]
    events: Vec<String>,

    /// The signing secret, `whsec_…`. Default: a new one, printed at start.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let listener = Listener::new(args)?;
    tokio::select! {
        result = listener.run() => result,
        signal = tokio::signal::ctrl_c() => {
            signal.context("could not wait for Ctrl-C")?;
            eprintln!("Stopped.");
            Ok(())
        }
    }
}

struct Listener {
    stream_url: Url,
    forward_to: Url,
    api_key: String,
    live: bool,
    /// Empty means every type.
    filter: Vec<String>,
    secret: String,
    /// True when the secret was generated here, so it must be shown.
    secret_generated: bool,
    stream_client: reqwest::Client,
    forward_client: reqwest::Client,
}

/// Why the stream stopped.
enum Interrupted {
    /// Worth another try (network trouble, a restart, a 5xx).
    Retry(String),
    /// Trying again cannot help (the key is refused).
    Fatal(anyhow::Error),
}

/// The parts of an event `listen` needs; the body is forwarded untouched.
#[derive(Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

impl Listener {
    fn new(args: ListenArgs) -> anyhow::Result<Self> {
        let live = args.api_key.starts_with("sk_live_");
        if live && !args.live {
            bail!(
                "--api-key is a live key (sk_live_…), so real events would be forwarded. \
                 Use a test key (sk_test_…), or pass --live if that is what you mean."
            );
        }
        let forward_to = parse_http_url("--forward-to", &args.forward_to)?;
        let base = parse_http_url("--url", &args.url)?;
        // `join` would drop a base path without a trailing slash; keep it.
        let stream_url = Url::parse(&format!(
            "{}/v1/events/stream",
            base.as_str().trim_end_matches('/')
        ))?;
        let filter: Vec<String> = args
            .events
            .iter()
            .map(|kind| kind.trim().to_owned())
            .filter(|kind| !kind.is_empty())
            .collect();
        for kind in &filter {
            if kind != "*" && !malipo_webhooks::is_known_event_type(kind) {
                bail!("--events: `{kind}` is not an event type, `category.*` or `*`");
            }
        }
        let (secret, secret_generated) = match args.secret {
            Some(secret) if signature::is_valid_secret(&secret) => (secret, false),
            Some(_) => bail!("--secret must be `whsec_` followed by base64 of 24 to 64 bytes"),
            None => (signature::generate_secret(), true),
        };

        malipo_webhooks::install_tls_provider();
        let user_agent = concat!("Malipo-Listen/", env!("CARGO_PKG_VERSION"));
        let stream_client = reqwest::Client::builder()
            .user_agent(user_agent)
            // A redirect would be a misconfigured --url; say so rather than follow.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(FORWARD_TIMEOUT)
            .read_timeout(STREAM_READ_TIMEOUT)
            .build()?;
        let forward_client = reqwest::Client::builder()
            .user_agent(user_agent)
            // Real deliveries do not follow redirects either.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FORWARD_TIMEOUT)
            .build()?;
        Ok(Self {
            stream_url,
            forward_to,
            api_key: args.api_key,
            live,
            filter,
            secret,
            secret_generated,
            stream_client,
            forward_client,
        })
    }

    /// Follows the stream forever, reconnecting after anything but a
    /// refused key.
    async fn run(&self) -> anyhow::Result<()> {
        let mut connected_before = false;
        // Each new failure is printed once, not once a second.
        let mut last_failure: Option<String> = None;
        loop {
            let interrupted = match self.connect().await {
                Ok(response) => {
                    if connected_before {
                        // The server does not replay what happened meanwhile.
                        eprintln!(
                            "Reconnected (events from while disconnected were not forwarded)."
                        );
                    } else {
                        connected_before = true;
                        self.print_ready();
                    }
                    last_failure = None;
                    self.forward_stream(response).await
                }
                Err(interrupted) => interrupted,
            };
            match interrupted {
                Interrupted::Fatal(error) => return Err(error),
                Interrupted::Retry(why) => {
                    if last_failure.as_deref() != Some(why.as_str()) {
                        eprintln!("{why}; reconnecting every second…");
                        last_failure = Some(why);
                    }
                }
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }

    /// Opens the stream; an error says whether trying again can help.
    async fn connect(&self) -> Result<reqwest::Response, Interrupted> {
        let response = self
            .stream_client
            .get(self.stream_url.clone())
            .bearer_auth(&self.api_key)
            .header(header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|error| {
                Interrupted::Retry(format!(
                    "could not reach {}: {}",
                    self.stream_url,
                    describe(&error)
                ))
            })?;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response);
        }
        let message = api_error_message(response).await;
        Err(
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                Interrupted::Fatal(anyhow!("Malipo refused the API key ({status}): {message}"))
            } else {
                Interrupted::Retry(format!("the event stream answered {status}: {message}"))
            },
        )
    }

    /// Forwards the stream's events until it ends.
    async fn forward_stream(&self, mut response: reqwest::Response) -> Interrupted {
        let mut parser = SseParser::default();
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    for message in parser.push(&bytes) {
                        self.forward(message).await;
                    }
                }
                Ok(None) => return Interrupted::Retry("the event stream ended".to_owned()),
                Err(error) => {
                    return Interrupted::Retry(format!(
                        "the event stream broke: {}",
                        describe(&error)
                    ));
                }
            }
        }
    }

    fn print_ready(&self) {
        let mode = if self.live { "live" } else { "test" };
        let only = if self.filter.is_empty() {
            String::new()
        } else {
            format!(" (only {})", self.filter.join(", "))
        };
        let secret = if self.secret_generated {
            format!("Signing secret: {}", self.secret)
        } else {
            "Signing with the --secret given.".to_owned()
        };
        println!(
            "Ready. Forwarding {mode}-mode events{only} to {}. {secret}",
            self.forward_to
        );
    }

    fn wants(&self, kind: &str) -> bool {
        self.filter.is_empty()
            || self.filter.iter().any(|pattern| {
                pattern == "*"
                    || pattern == kind
                    || pattern
                        .strip_suffix('*')
                        .is_some_and(|category| kind.starts_with(category))
            })
    }

    /// POSTs one event; a failure is printed, never fatal.
    async fn forward(&self, message: SseMessage) {
        let Ok(event) = serde_json::from_str::<EventHead>(&message.data) else {
            eprintln!("skipped a stream message that is not an event: {message:?}");
            return;
        };
        if !self.wants(&event.kind) {
            return;
        }
        let body = message.data.into_bytes();
        let signed = signature::sign(&[&self.secret], &event.id, unix_now(), &body);
        let mut request = self
            .forward_client
            .post(self.forward_to.clone())
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let outcome = match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                format!(
                    "{} {} ({} ms)",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or(""),
                    started.elapsed().as_millis()
                )
            }
            Err(error) => format!("error: {}", describe(&error)),
        };
        println!("{}  {}  {}  -> {outcome}", now_text(), event.kind, event.id);
    }
}

fn parse_http_url(flag: &str, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| format!("{flag}: `{text}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{flag}: `{text}` is not an http:// or https:// URL");
    }
    Ok(url)
}

/// The API's `{"error":{"message":…}}`, or whatever the body was.
async fn api_error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

/// A short reason: reqwest's own message only says "error sending request";
/// the innermost cause says what happened ("Connection refused").
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Now in UTC (the build has no local-time support), to the second.
fn now_text() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

/// One server-sent event.
#[derive(Debug, PartialEq, Eq)]
struct SseMessage {
    event: Option<String>,
    id: Option<String>,
    data: String,
}

/// A server-sent events parser fed chunks as they arrive: a chunk may end
/// anywhere, even inside a line or a UTF-8 character.
#[derive(Debug, Default)]
struct SseParser {
    /// Bytes of a line whose end has not arrived yet.
    partial: Vec<u8>,
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Takes the next chunk and returns the messages it completed.
    fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut buffer = std::mem::take(&mut self.partial);
        buffer.extend_from_slice(chunk);
        let mut messages = Vec::new();
        let mut start = 0;
        while let Some(length) = buffer[start..].iter().position(|&byte| byte == b'\n') {
            let line = &buffer[start..start + length];
            // LF or CRLF line ends.
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            messages.extend(self.line(&String::from_utf8_lossy(line)));
            start += length + 1;
        }
        buffer.drain(..start);
        self.partial = buffer;
        messages
    }

    fn line(&mut self, line: &str) -> Option<SseMessage> {
        if line.is_empty() {
            // A blank line ends a message; one without data is not one
            // (as the SSE specification says).
            let (event, id) = (self.event.take(), self.id.take());
            return self.data.take().map(|data| SseMessage { event, id, data });
        }
        if line.starts_with(':') {
            // A comment: the server's keep-alive.
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `retry` and unknown fields do not matter here.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: &str, id: &str, data: &str) -> SseMessage {
        SseMessage {
            event: Some(event.to_owned()),
            id: Some(id.to_owned()),
            data: data.to_owned(),
        }
    }

    const TWO: &str = "event: payment.pending\nid: evt_1\ndata: {\"a\":\"é\"}\n\n\
                       : keep-alive\n\n\
                       event: payment.succeeded\nid: evt_2\ndata: {}\n\n";

    #[test]
    fn whole_messages_in_one_chunk() {
        let mut parser = SseParser::default();
        assert_eq!(
            parser.push(TWO.as_bytes()),
            [
                message("payment.pending", "evt_1", "{\"a\":\"é\"}"),
                message("payment.succeeded", "evt_2", "{}"),
            ]
        );
    }

    #[test]
    fn any_chunk_boundary_gives_the_same_messages() {
        let bytes = TWO.as_bytes();
        for split in 0..=bytes.len() {
            let mut parser = SseParser::default();
            let mut messages = parser.push(&bytes[..split]);
            messages.extend(parser.push(&bytes[split..]));
            assert_eq!(messages.len(), 2, "split at {split}");
            assert_eq!(messages[0].data, "{\"a\":\"é\"}", "split at {split}");
        }
        // One byte at a time, splitting the two-byte `é` too.
        let mut parser = SseParser::default();
        let messages: Vec<_> = bytes.iter().flat_map(|b| parser.push(&[*b])).collect();
        assert_eq!(messages, SseParser::default().push(bytes));
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let mut parser = SseParser::default();
        let messages = parser.push(b"data: one\ndata:two\ndata:  three\ndata\n\n");
        assert_eq!(messages.len(), 1);
        // Only the one space after the colon is dropped; `data` alone is an
        // empty line.
        assert_eq!(messages[0].data, "one\ntwo\n three\n");
        assert_eq!(messages[0].event, None);
    }

    #[test]
    fn comments_and_messages_without_data_are_not_messages() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b": ping\n\n:\n\nevent: x\nid: 1\n\n")
                .is_empty()
        );
        // The dropped message's fields do not leak into the next one.
        assert_eq!(
            parser.push(b"data: d\n\n"),
            [SseMessage {
                event: None,
                id: None,
                data: "d".to_owned()
            }]
        );
    }

    #[test]
    fn crlf_line_ends() {
        let mut parser = SseParser::default();
        let mut messages = parser.push(b"event: e\r\nid: evt_1\r\ndata: a\r");
        // A CR at the end of a chunk waits for its LF.
        assert!(messages.is_empty());
        messages.extend(parser.push(b"\ndata: b\r\n\r\n"));
        assert_eq!(messages, [message("e", "evt_1", "a\nb")]);
    }

    #[test]
    fn an_unfinished_message_is_kept() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"event: e\nid: evt_1\ndata: {}\n").is_empty());
        assert_eq!(parser.push(b"\n"), [message("e", "evt_1", "{}")]);
    }
}
