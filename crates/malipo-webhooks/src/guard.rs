//! The SSRF guard: endpoint URLs must not make Malipo call into the
//! operator's own network.
//!
//! A merchant chooses where webhooks go. Without a guard, a merchant could
//! register `https://169.254.169.254/latest/meta-data` (cloud credentials),
//! `https://10.0.0.5/admin` or `https://localhost:5432` and use Malipo's
//! deliveries, retries and delivery logs to probe or attack hosts only the
//! operator's network can reach. Live mode therefore only delivers to public
//! addresses over https ([`UrlPolicy::STRICT`]); test mode may allow local
//! URLs when the operator says so ([`UrlPolicy::PERMISSIVE`]), so merchants
//! can develop against `http://localhost:3000`.
//!
//! The checks happen in layers, because no single one is enough:
//!
//! 1. [`check_url`] parses the URL with the WHATWG parser (the one browsers
//!    use, via `reqwest::Url`), which turns every IPv4 spelling (`2130706433`,
//!    `0177.0.0.1`, `0x7f.1`, `127.1`, percent-encoded or full-width digits)
//!    into one address, and refuses forbidden IP literals, `localhost`, bad
//!    schemes and credentials. No DNS: it is cheap and deterministic.
//! 2. [`check_url_resolved`] runs when an endpoint is saved: it also resolves
//!    the name and refuses it if any address is forbidden, so the merchant
//!    hears about a mistake at once.
//! 3. [`GuardedResolver`] is the delivery client's DNS resolver. A name that
//!    was public when saved may resolve to a private address later (DNS
//!    rebinding); the resolver drops forbidden addresses from the very answer
//!    the connection uses, so there is no window between check and connect.
//!
//! What the delivery client must also do:
//!
//! - Call [`check_url`] before **every** attempt: a client built with
//!   `.dns_resolver(GuardedResolver::new(..))` connects to IP-literal URLs
//!   directly without asking the resolver, so the resolver alone lets
//!   `https://127.0.0.1/` through.
//! - Not follow redirects (`reqwest::redirect::Policy::none()`): a redirect
//!   to an IP literal would skip both the resolver and `check_url`.
//! - Not use a proxy (`.no_proxy()`): with a proxy the resolver sees the
//!   proxy's name, not the endpoint's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which endpoint URLs are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Live mode: true. Requires https and public addresses only.
    pub strict: bool,
}

impl UrlPolicy {
    /// Live mode, and test mode unless the operator allows local URLs: https
    /// to public addresses only.
    pub const STRICT: Self = Self { strict: true };
    /// Test mode when the operator allows local URLs: http or https, any
    /// address. Scheme and credential checks still apply.
    pub const PERMISSIVE: Self = Self { strict: false };
}

/// Why an endpoint URL is refused. The messages are meant for the merchant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    /// The text is not an absolute URL; holds the parser's reason.
    #[error("not a valid absolute URL: {0}")]
    Invalid(String),
    /// Strict policy and an `http` URL: deliveries carry payment data and
    /// signatures that must not travel in clear text.
    #[error("the URL must use https")]
    NotHttps,
    /// Neither http nor https (`ftp:`, `file:`, `data:`…).
    #[error("only http and https URLs can receive webhooks")]
    Scheme,
    /// Credentials in a URL end up in logs and the dashboard; merchants
    /// authenticate deliveries with the signature instead.
    #[error("the URL must not contain a username or password")]
    Credentials,
    /// The host is, or resolves to, an address a webhook must never reach.
    /// For `localhost` names this is `127.0.0.1`, where they resolve by
    /// definition (RFC 6761).
    #[error("{0} is not a public address")]
    Forbidden(IpAddr),
}

/// The error a [`GuardedResolver`] fails with when every address of a name
/// is forbidden. It is in the `reqwest::Error`'s source chain (walk
/// `source()` and downcast), so a worker can tell "blocked by the guard"
/// from a network failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{host} resolves only to non-public addresses")]
pub struct NonPublicHost {
    /// The name that was resolved.
    pub host: String,
}

/// IPv4 networks a webhook must never reach, as (network, prefix length).
/// Why each: the operator's own networks, addresses that mean "this host",
/// and ranges that are never a single public host.
const FORBIDDEN_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8), // "this network"; 0.0.0.0 reaches localhost on Linux
    (Ipv4Addr::new(10, 0, 0, 0), 8), // RFC 1918 private
    (Ipv4Addr::new(100, 64, 0, 0), 10), // carrier-grade NAT, shared address space
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, incl. cloud metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12), // RFC 1918 private
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16), // RFC 1918 private
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, incl. broadcast 255.255.255.255
];

/// IPv6 networks a webhook must never reach. The ranges that embed an IPv4
/// address (mapped, compatible, NAT64, 6to4) are not here: they are judged by
/// the address they embed, see [`embedded_v4`].
const FORBIDDEN_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::UNSPECIFIED, 128), // ::
    (Ipv6Addr::LOCALHOST, 128),   // ::1
    // Local-use NAT64 (RFC 8215): the operator's own translator.
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    // Discard-only.
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    // Teredo: a tunnel to an IPv4 host we cannot check.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
    // Benchmarking.
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48),
    // Documentation (RFC 3849, RFC 9637).
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
    // Unique local, the IPv6 private networks.
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    // Link-local.
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    // Site-local: deprecated, but still routed inside some networks.
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
    // Multicast.
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// True for every address a webhook must never reach: loopback, private,
/// link-local (cloud metadata), shared, multicast, reserved, documentation
/// and benchmarking ranges, in IPv4 and IPv6; and IPv6 addresses that embed
/// such an IPv4 address (`::ffff:127.0.0.1`, `64:ff9b::a9fe:a9fe`,
/// `2002:7f00:1::`), because the network stack or a translator delivers
/// those to the embedded IPv4 host.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    FORBIDDEN_V4.iter().any(|&(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        ip & mask == u32::from(network) & mask
    })
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    let ip = u128::from(ip);
    FORBIDDEN_V6.iter().any(|&(network, prefix)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        ip & mask == u128::from(network) & mask
    })
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms
/// that reach an IPv4 host: IPv4-mapped `::ffff:0:0/96`, IPv4-translated
/// `::ffff:0:0:0/96`, IPv4-compatible `::/96` (which includes `::` and
/// `::1`, embedding the forbidden 0.0.0.0 and 0.0.0.1), NAT64
/// `64:ff9b::/96`, and 6to4 `2002::/16` (the IPv4 address in bits 16–48).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low32 = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] // mapped
        | [0, 0, 0, 0, 0xffff, 0, _, _] // translated
        | [0, 0, 0, 0, 0, 0, _, _] // compatible
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32()), // NAT64
        [0x2002, high, low, ..] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))),
        _ => None,
    }
}

/// Parses and checks a URL without DNS: the scheme, credentials and, under
/// the strict policy, the host. An IP literal in any encoding is checked as
/// the address it denotes (the WHATWG parser normalizes them); `localhost`
/// and `*.localhost` (with or without trailing dots) are refused because
/// they resolve to loopback by definition. Returns the parsed URL, which is
/// what delivery should use (not the original text).
pub fn check_url(url: &str, policy: UrlPolicy) -> Result<Url, GuardError> {
    let parsed = Url::parse(url).map_err(|error| GuardError::Invalid(error.to_string()))?;

    match parsed.scheme() {
        "https" => {}
        "http" if !policy.strict => {}
        "http" => return Err(GuardError::NotHttps),
        _ => return Err(GuardError::Scheme),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(GuardError::Credentials);
    }

    if policy.strict {
        if let Some(ip) = host_ip(&parsed) {
            if is_forbidden(ip) {
                return Err(GuardError::Forbidden(ip));
            }
        } else if parsed.domain().is_some_and(is_localhost) {
            return Err(GuardError::Forbidden(Ipv4Addr::LOCALHOST.into()));
        }
    }
    Ok(parsed)
}

/// How long saving an endpoint waits for DNS before giving up on the check.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`check_url`], then, under the strict policy, resolves the host and
/// refuses the URL if ANY address is forbidden (a name with one private
/// address is a mistake or an attack either way).
///
/// If resolution fails or times out (offline, NXDOMAIN, a name not yet
/// published), the URL is accepted: this check is for early feedback, and
/// delivery filters the addresses it actually connects to with
/// [`GuardedResolver`].
pub async fn check_url_resolved(url: &str, policy: UrlPolicy) -> Result<Url, GuardError> {
    let parsed = check_url(url, policy)?;
    if !policy.strict {
        return Ok(parsed);
    }
    // IP literals were fully checked above.
    let Some(host) = parsed.domain() else {
        return Ok(parsed);
    };
    let port = parsed.port_or_known_default().unwrap_or(443);

    let forbidden = match tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(addrs)) => first_forbidden(addrs),
        Ok(Err(error)) => {
            tracing::debug!(host, %error, "could not resolve a webhook endpoint's host; accepting it, delivery checks again");
            None
        }
        Err(_elapsed) => {
            tracing::debug!(
                host,
                "resolving a webhook endpoint's host timed out; accepting it, delivery checks again"
            );
            None
        }
    };
    match forbidden {
        Some(ip) => Err(GuardError::Forbidden(ip)),
        None => Ok(parsed),
    }
}

/// The first forbidden address among `addrs`, if any.
fn first_forbidden(addrs: impl IntoIterator<Item = SocketAddr>) -> Option<IpAddr> {
    addrs
        .into_iter()
        .map(|addr| addr.ip())
        .find(|&ip| is_forbidden(ip))
}

/// A reqwest DNS resolver that, under the strict policy, drops forbidden
/// addresses from every answer, so a name that resolves to a private address
/// at delivery time (DNS rebinding) is never connected to. If every address
/// is forbidden, resolution fails with [`NonPublicHost`].
///
/// It only sees names: IP-literal URLs bypass it, so delivery also calls
/// [`check_url`] on every attempt (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: UrlPolicy,
}

impl GuardedResolver {
    /// A resolver for deliveries under `policy`; with
    /// [`UrlPolicy::PERMISSIVE`] it filters nothing.
    pub fn new(policy: UrlPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in place.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let total = addrs.len();
            let kept = filter_addresses(addrs, policy).map_err(|_| {
                tracing::warn!(%host, "a webhook endpoint's host resolves only to non-public addresses; not connecting");
                NonPublicHost { host: host.clone() }
            })?;
            if kept.len() < total {
                tracing::warn!(%host, dropped = total - kept.len(), "dropped non-public addresses from a webhook endpoint's DNS answer");
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok::<_, ResolveError>(addrs)
        })
    }
}

/// The error type reqwest's [`Resolving`] future carries.
type ResolveError = Box<dyn std::error::Error + Send + Sync>;

/// The resolver's filter: under the strict policy keeps only permitted
/// addresses, in their original order, and fails with the first forbidden
/// address if none remain. The permissive policy keeps everything. An empty
/// answer stays empty (the connector reports that itself).
pub(crate) fn filter_addresses(
    addrs: Vec<SocketAddr>,
    policy: UrlPolicy,
) -> Result<Vec<SocketAddr>, GuardError> {
    if !policy.strict {
        return Ok(addrs);
    }
    let first = first_forbidden(addrs.iter().copied());
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| !is_forbidden(addr.ip()))
        .collect();
    match first {
        Some(ip) if kept.is_empty() => Err(GuardError::Forbidden(ip)),
        _ => Ok(kept),
    }
}

/// The URL's host as an IP address, if it is an IP literal. (`Url::host`
/// would say so directly, but its `Host` type lives in the `url` crate, which
/// this crate only reaches through reqwest's `Url`.)
fn host_ip(url: &Url) -> Option<IpAddr> {
    if url.domain().is_some() {
        return None;
    }
    let host = url.host_str()?;
    // IPv6 literals keep their brackets in `host_str`.
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// `localhost` and its subdomains, which resolve to loopback by definition
/// (RFC 6761), with any trailing dots. The parser has already lowercased and
/// percent-decoded the name.
fn is_localhost(domain: &str) -> bool {
    let name = domain.trim_end_matches('.');
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forbidden(text: &str) -> GuardError {
        GuardError::Forbidden(ip(text))
    }

    fn invalid() -> GuardError {
        GuardError::Invalid(String::new())
    }

    /// Equal, except that any `Invalid` matches any `Invalid` (the reason is
    /// the parser's wording).
    fn same(got: &GuardError, want: &GuardError) -> bool {
        match (got, want) {
            (GuardError::Invalid(_), GuardError::Invalid(_)) => true,
            _ => got == want,
        }
    }

    #[test]
    fn strict_refuses() {
        let loopback = || forbidden("127.0.0.1");
        let cases: Vec<(&str, GuardError)> = vec![
            ("http://example.com", GuardError::NotHttps),
            ("http://127.0.0.1", GuardError::NotHttps),
            ("https://127.0.0.1", loopback()),
            ("https://127.0.0.1:8080/hooks", loopback()),
            ("https://127.0.0.1./", loopback()),
            ("https://127.255.255.254", forbidden("127.255.255.254")),
            ("https://localhost", loopback()),
            ("https://LOCALHOST:8443/", loopback()),
            ("https://localhost./", loopback()),
            ("https://foo.localhost", loopback()),
            ("https://a.b.localhost./x", loopback()),
            ("https://loc%61lhost/", loopback()),
            // IPv4 spellings the WHATWG parser normalizes.
            ("https://2130706433", loopback()),
            ("https://0177.0.0.1", loopback()),
            ("https://0x7f.0.0.1", loopback()),
            ("https://0x7f000001", loopback()),
            ("https://0x7F.1", loopback()),
            ("https://127.1", loopback()),
            ("https://017700000001", loopback()),
            ("https://%31%32%37.0.0.1/", loopback()),
            ("https://\u{ff11}\u{ff12}\u{ff17}.0.0.1/", loopback()), // full-width digits
            ("https://10.0.0.1", forbidden("10.0.0.1")),
            ("https://0xa.1", forbidden("10.0.0.1")),
            ("https://172.16.5.4", forbidden("172.16.5.4")),
            ("https://172.31.255.255", forbidden("172.31.255.255")),
            ("https://192.168.1.1", forbidden("192.168.1.1")),
            ("https://100.64.0.1", forbidden("100.64.0.1")),
            (
                "https://169.254.169.254/latest/meta-data",
                forbidden("169.254.169.254"),
            ),
            ("https://0.0.0.0", forbidden("0.0.0.0")),
            ("https://0", forbidden("0.0.0.0")),
            ("https://224.0.0.1", forbidden("224.0.0.1")),
            ("https://255.255.255.255", forbidden("255.255.255.255")),
            ("https://240.0.0.1", forbidden("240.0.0.1")),
            ("https://198.18.0.1", forbidden("198.18.0.1")),
            ("https://192.0.0.8", forbidden("192.0.0.8")),
            ("https://192.0.2.1", forbidden("192.0.2.1")),
            ("https://198.51.100.7", forbidden("198.51.100.7")),
            ("https://203.0.113.9", forbidden("203.0.113.9")),
            // IPv6 literals.
            ("https://[::1]", forbidden("::1")),
            ("https://[0:0:0:0:0:0:0:1]:8443/", forbidden("::1")),
            ("https://[::]", forbidden("::")),
            ("https://[fc00::1]", forbidden("fc00::1")),
            ("https://[fd12:3456::1]", forbidden("fd12:3456::1")),
            ("https://[fe80::1]", forbidden("fe80::1")),
            ("https://[fec0::1]", forbidden("fec0::1")),
            ("https://[ff02::1]", forbidden("ff02::1")),
            ("https://[2001:db8::1]", forbidden("2001:db8::1")),
            ("https://[::ffff:127.0.0.1]", forbidden("::ffff:127.0.0.1")),
            ("https://[::ffff:7f00:1]", forbidden("::ffff:127.0.0.1")),
            ("https://[::ffff:10.0.0.1]", forbidden("::ffff:10.0.0.1")),
            (
                "https://[::ffff:a9fe:a9fe]",
                forbidden("::ffff:169.254.169.254"),
            ),
            ("https://[::127.0.0.1]", forbidden("::127.0.0.1")),
            (
                "https://[64:ff9b::a9fe:a9fe]",
                forbidden("64:ff9b::a9fe:a9fe"),
            ),
            ("https://[64:ff9b::7f00:1]", forbidden("64:ff9b::7f00:1")),
            ("https://[2002:7f00:1::]", forbidden("2002:7f00:1::")),
            ("https://[2002:c0a8:101::1]", forbidden("2002:c0a8:101::1")),
            // Credentials.
            ("https://user:pass@example.com", GuardError::Credentials),
            ("https://user@example.com", GuardError::Credentials),
            ("https://:pass@example.com", GuardError::Credentials),
            // Schemes and garbage.
            ("ftp://example.com", GuardError::Scheme),
            ("file:///etc/passwd", GuardError::Scheme),
            ("gopher://127.0.0.1:6379/_FLUSHALL", GuardError::Scheme),
            ("data:text/plain,hi", GuardError::Scheme),
            ("javascript:alert(1)", GuardError::Scheme),
            ("not a url", invalid()),
            ("", invalid()),
            ("/hooks", invalid()),
            ("https://", invalid()),
            ("https://[::1", invalid()),
            ("https://256.0.0.1", invalid()),
            ("https://exa mple.com", invalid()),
        ];
        let mut failures = Vec::new();
        for (url, want) in &cases {
            match check_url(url, UrlPolicy::STRICT) {
                Err(got) if same(&got, want) => {}
                other => failures.push(format!("{url:?}: got {other:?}, want Err({want:?})")),
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn strict_accepts() {
        let cases = [
            ("https://example.com/hooks", "https://example.com/hooks"),
            ("https://93.184.216.34/x", "https://93.184.216.34/x"),
            ("https://[2606:4700::1111]/", "https://[2606:4700::1111]/"),
            (
                "https://Example.COM:8443/a?b=c",
                "https://example.com:8443/a?b=c",
            ),
            (
                "https://localhost.example.com/",
                "https://localhost.example.com/",
            ),
            ("https://mylocalhost/", "https://mylocalhost/"),
            ("https://8.8.8.8/", "https://8.8.8.8/"),
            ("https://172.32.0.1/", "https://172.32.0.1/"),
            ("https://100.128.0.1/", "https://100.128.0.1/"),
            (
                "https://[::ffff:93.184.216.34]/",
                "https://[::ffff:5db8:d822]/",
            ),
            ("https://[64:ff9b::808:808]/", "https://[64:ff9b::808:808]/"),
            ("https://[2002:808:808::1]/", "https://[2002:808:808::1]/"),
        ];
        for (url, normalized) in cases {
            match check_url(url, UrlPolicy::STRICT) {
                Ok(parsed) => assert_eq!(parsed.as_str(), normalized, "{url}"),
                Err(error) => panic!("{url:?} was refused: {error}"),
            }
        }
    }

    #[test]
    fn permissive_allows_local_urls_but_not_other_schemes_or_credentials() {
        for url in [
            "http://localhost:3000/hooks",
            "http://127.0.0.1:9/x",
            "https://10.0.0.1/",
            "http://[::1]:8080/",
            "http://example.com/",
        ] {
            assert!(check_url(url, UrlPolicy::PERMISSIVE).is_ok(), "{url}");
        }
        // The normalized address is what delivery connects to.
        assert_eq!(
            check_url("http://0x7f000001:9/", UrlPolicy::PERMISSIVE).map(|u| u.to_string()),
            Ok("http://127.0.0.1:9/".to_owned())
        );
        assert_eq!(
            check_url("ftp://localhost/", UrlPolicy::PERMISSIVE),
            Err(GuardError::Scheme)
        );
        assert_eq!(
            check_url("http://user:pass@localhost:3000/", UrlPolicy::PERMISSIVE),
            Err(GuardError::Credentials)
        );
        assert!(matches!(
            check_url("not a url", UrlPolicy::PERMISSIVE),
            Err(GuardError::Invalid(_))
        ));
    }

    #[test]
    fn forbidden_addresses() {
        for text in [
            "0.1.2.3",
            "10.255.255.255",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.0.1",
            "172.16.0.0",
            "192.0.0.170",
            "192.88.99.1",
            "192.168.255.255",
            "198.19.255.255",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "::1",
            "::2",
            "100::1",
            "2001::1",
            "2001:2::1",
            "3fff::1",
            "64:ff9b:1::a",
            "fdff:ffff::1",
            "febf::1",
            "ff0e::1",
            "::ffff:0:10.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(is_forbidden(ip(text)), "{text} should be forbidden");
        }
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "2002:101:101::",
        ] {
            assert!(!is_forbidden(ip(text)), "{text} should be allowed");
        }
    }

    #[test]
    fn filter_drops_forbidden_addresses() {
        let private = SocketAddr::from(([10, 0, 0, 1], 443));
        let public = SocketAddr::from(([93, 184, 216, 34], 443));
        let loopback6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 443));
        let metadata = SocketAddr::from(([169, 254, 169, 254], 80));

        assert_eq!(
            filter_addresses(vec![private, public, loopback6], UrlPolicy::STRICT),
            Ok(vec![public])
        );
        assert_eq!(
            filter_addresses(vec![private, metadata], UrlPolicy::STRICT),
            Err(GuardError::Forbidden(private.ip()))
        );
        assert_eq!(
            filter_addresses(vec![private, public], UrlPolicy::PERMISSIVE),
            Ok(vec![private, public])
        );
        assert_eq!(
            filter_addresses(Vec::new(), UrlPolicy::STRICT),
            Ok(Vec::new())
        );
    }

    #[tokio::test]
    async fn resolved_check_refuses_localhost_before_dns() {
        assert_eq!(
            check_url_resolved("https://localhost/", UrlPolicy::STRICT).await,
            Err(forbidden("127.0.0.1"))
        );
        assert_eq!(
            check_url_resolved("https://[::1]/", UrlPolicy::STRICT).await,
            Err(forbidden("::1"))
        );
        assert_eq!(
            check_url_resolved("http://example.com/", UrlPolicy::STRICT).await,
            Err(GuardError::NotHttps)
        );
        assert!(
            check_url_resolved("http://localhost:3000/", UrlPolicy::PERMISSIVE)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn resolved_check_accepts_names_that_do_not_resolve() {
        // `.invalid` never resolves (RFC 6761); offline, nothing does.
        assert!(
            check_url_resolved("https://nothing-here.invalid/hooks", UrlPolicy::STRICT)
                .await
                .is_ok()
        );
    }

    #[test]
    fn first_forbidden_finds_any_private_address() {
        let public = SocketAddr::from(([93, 184, 216, 34], 443));
        let private = SocketAddr::from(([192, 168, 0, 10], 443));
        assert_eq!(first_forbidden([public, private]), Some(private.ip()));
        assert_eq!(first_forbidden([public]), None);
    }

    #[tokio::test]
    async fn resolver_refuses_names_with_only_private_addresses() {
        // An IP-literal name resolves without DNS, so this runs offline.
        let name = Name::from_str("127.0.0.1").unwrap();
        let error = match GuardedResolver::new(UrlPolicy::STRICT).resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error,
        };
        assert!(
            error
                .to_string()
                .contains("resolves only to non-public addresses"),
            "{error}"
        );
        assert!(error.downcast_ref::<NonPublicHost>().is_some());

        let name = Name::from_str("93.184.216.34").unwrap();
        let addrs: Vec<SocketAddr> = GuardedResolver::new(UrlPolicy::STRICT)
            .resolve(name)
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec![SocketAddr::from(([93, 184, 216, 34], 0))]);

        let name = Name::from_str("127.0.0.1").unwrap();
        let addrs: Vec<SocketAddr> = GuardedResolver::new(UrlPolicy::PERMISSIVE)
            .resolve(name)
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
    }

    /// The resolver in a real client: a name that resolves only to loopback
    /// is refused with [`NonPublicHost`] in the error's source chain, before
    /// any connection. An IP literal never reaches the resolver, which is why
    /// delivery must call [`check_url`] on every attempt.
    #[tokio::test]
    async fn client_with_the_resolver_refuses_local_names_but_not_ip_literals() {
        // A client needs the process-wide crypto provider.
        crate::install_tls_provider();
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(UrlPolicy::STRICT))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();

        let blocked_by_guard = |error: &reqwest::Error| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
            while let Some(cause) = source {
                if cause.downcast_ref::<NonPublicHost>().is_some() {
                    return true;
                }
                source = cause.source();
            }
            false
        };

        let error = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(blocked_by_guard(&error), "{error:?}");

        // Port 9 (discard) is closed or drops the request: either way the
        // client tried to connect, and the guard was not consulted.
        if let Err(error) = client.get("http://127.0.0.1:9/").send().await {
            assert!(!blocked_by_guard(&error), "{error:?}");
        }
    }
}
