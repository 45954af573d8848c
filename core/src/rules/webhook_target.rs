//! Where webhook deliveries may go: the URL rule applied when an endpoint is created or
//! updated, and the address rule a delivery client applies again after DNS resolution.
//!
//! A webhook URL is something a management caller types and the server then connects to, so
//! without a rule it is a way to make the server reach what only it can reach (its database,
//! a cloud metadata service, an internal admin page). The rule:
//!
//! * the URL parses (WHATWG rules, the `url` crate), its scheme is `http` or `https`, it has a
//!   host, no user name or password, and it is at most 2 048 bytes;
//! * a host that is an IP address, in any spelling the URL standard reads as one
//!   (`0x7f000001`, `2130706433`, `127.1`, `[::ffff:127.0.0.1]`), must be a public unicast
//!   address ([`ip_allowed`]); the names `localhost` and `*.localhost` are loopback too;
//! * a host name is checked again when the delivery connects, against every address it
//!   resolves to, since a name can point anywhere.
//!
//! `allow_private` (the server's `LICENTIA_WEBHOOK_ALLOW_PRIVATE=1`) admits private, loopback
//! and link-local targets, for local testing; the scheme, host and credential rules stay.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest accepted webhook URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not a URL, not http(s), no host, credentials in it, or too long.
    #[error("url must be an http:// or https:// URL with a host and no credentials")]
    Malformed,
    /// The host is (or resolves to) an address deliveries may not reach.
    #[error(
        "webhook deliveries may not go to {0} (a loopback, private, link-local or otherwise non-public address)"
    )]
    NotAllowed(String),
}

/// Checks a webhook URL and returns it parsed.
///
/// # Errors
///
/// [`TargetError`], see the module docs.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    if raw.len() > MAX_URL_LEN || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(TargetError::Malformed);
    }
    // The URL standard reads `http:///name` as `http://name/`; a URL typed without its host
    // is a mistake, not a host name.
    let authority = raw.split_once("://").map(|(_, rest)| rest);
    if authority.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
        return Err(TargetError::Malformed);
    }
    let url = Url::parse(raw).map_err(|_| TargetError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(TargetError::Malformed);
    }
    let refused = |what: &str| Err(TargetError::NotAllowed(what.to_owned()));
    match url.host() {
        None => return Err(TargetError::Malformed),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            if name.is_empty() {
                return Err(TargetError::Malformed);
            }
            let loopback = name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost");
            if loopback && !allow_private {
                return refused(name);
            }
        }
        Some(Host::Ipv4(ip)) => {
            if !ip_allowed(IpAddr::V4(ip), allow_private) {
                return refused(&ip.to_string());
            }
        }
        Some(Host::Ipv6(ip)) => {
            if !ip_allowed(IpAddr::V6(ip), allow_private) {
                return refused(&ip.to_string());
            }
        }
    }
    Ok(url)
}

/// Whether a delivery may connect to `ip`: a public unicast address, or with
/// `allow_private` also a private, loopback, link-local or unique-local one. Unspecified,
/// multicast, broadcast and reserved addresses are never allowed. IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::/96`) forms are
/// judged as the IPv4 address they carry.
pub fn ip_allowed(ip: IpAddr, allow_private: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, allow_private),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_allowed(v4, allow_private),
            None => v6_allowed(v6, allow_private),
        },
    }
}

fn v4_allowed(ip: Ipv4Addr, allow_private: bool) -> bool {
    let [a, b, c, _] = ip.octets();
    let never = ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || a >= 240 // reserved
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b & 0xfe) == 18); // benchmarking
    if never {
        return false;
    }
    let private =
        ip.is_loopback() || ip.is_private() || ip.is_link_local() || (a == 100 && (b & 0xc0) == 64); // shared address space (carrier NAT)
    !private || allow_private
}

fn v6_allowed(ip: Ipv6Addr, allow_private: bool) -> bool {
    let seg = ip.segments();
    let never = ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] & 0xffc0) == 0xfec0; // deprecated site-local
    if never {
        return false;
    }
    let private = ip.is_loopback()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80; // link-local
    !private || allow_private
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible or NAT64 IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = ip.segments();
    let o = ip.octets();
    let tail = || Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    // ::a.b.c.d (deprecated "compatible"), but not :: and ::1, which are themselves.
    if seg[..6].iter().all(|&s| s == 0) && (seg[6] != 0) {
        return Some(tail());
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|&s| s == 0) {
        return Some(tail());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_forms() {
        for url in [
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00::1]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://127.1/",
            "http://127.0.0.1:5432/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::7f00:1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://192.168.1.10/",
            "http://172.16.0.1/",
            "http://100.64.0.1/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://LOCALHOST./",
        ] {
            assert!(
                matches!(check_url(url, false), Err(TargetError::NotAllowed(_))),
                "{url} must be refused as an address"
            );
        }
        for url in [
            "http:///nohost",
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://user:pw@example.com/",
            "http://exa mple.com/",
            "not a url",
            "",
            "https://",
        ] {
            assert_eq!(check_url(url, false), Err(TargetError::Malformed), "{url}");
        }
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(2100)), false).is_err());
    }

    #[test]
    fn allowed_forms() {
        for url in [
            "https://hooks.example.com/licentia",
            "http://93.184.216.34:8080/x?y=1",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://[fd00::1]/",
            "http://10.1.2.3/",
        ] {
            assert!(
                check_url(url, true).is_ok(),
                "{url} with private targets allowed"
            );
        }
        for url in ["http://0.0.0.0/", "http://224.0.0.1/", "http://[::]/"] {
            assert!(check_url(url, true).is_err(), "{url} is never a target");
        }
    }
}
