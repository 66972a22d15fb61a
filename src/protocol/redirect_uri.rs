//! Redirect URIs: what may be registered (RFC 9700 §2.6, RFC 6749 §3.1.2) and how a requested
//! URI is matched against the registration (RFC 9700 §4.1.3: exact string comparison; RFC 8252
//! §7.3: any port on a loopback IP literal for native clients).

use url::{Host, Url};

/// Why a redirect URI cannot be registered. Each message is one line for the admin CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URI is not an absolute URI")]
    NotAbsolute,
    #[error("redirect URI must not contain a fragment (RFC 6749 section 3.1.2)")]
    Fragment,
    #[error("redirect URI must not contain a wildcard")]
    Wildcard,
    #[error("redirect URI must not contain spaces, backslashes or control characters")]
    BadCharacter,
    #[error("redirect URI must not contain user information (user@host)")]
    UserInfo,
    #[error("redirect URI must not carry code, state, iss, error or response in its query")]
    ReservedQueryParameter,
    #[error("redirect URI uses a scheme that can run code in the browser")]
    DangerousScheme,
    #[error("redirect URI must use https, or http only on a loopback host (RFC 9700 section 2.6)")]
    PlainHttp,
    #[error("redirect URI with a custom scheme is only allowed for public (native) clients")]
    CustomSchemeForConfidentialClient,
}

/// Query parameters the authorization response writes; a registered URI that already carries
/// one could be used to plant a value (Keycloak CVE-2026-9689).
const RESERVED_QUERY: [&str; 5] = ["code", "state", "iss", "error", "response"];

/// Checks a redirect URI at registration time. `public` clients may use custom schemes (native
/// apps, RFC 8252 §7.1); every client may use `https` and `http` on a loopback host.
pub fn validate_registration(raw: &str, public: bool) -> Result<(), RedirectUriError> {
    if raw.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    if raw.contains('*') {
        return Err(RedirectUriError::Wildcard);
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(RedirectUriError::BadCharacter);
    }
    let url = Url::parse(raw).map_err(|_| RedirectUriError::NotAbsolute)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectUriError::UserInfo);
    }
    if url
        .query_pairs()
        .any(|(name, _)| RESERVED_QUERY.contains(&name.as_ref()))
    {
        return Err(RedirectUriError::ReservedQueryParameter);
    }
    match url.scheme() {
        "javascript" | "data" | "vbscript" | "file" | "blob" | "about" => {
            Err(RedirectUriError::DangerousScheme)
        }
        "https" if url.host().is_some() => Ok(()),
        "https" => Err(RedirectUriError::NotAbsolute),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(RedirectUriError::PlainHttp),
        _ if public => Ok(()),
        _ => Err(RedirectUriError::CustomSchemeForConfidentialClient),
    }
}

/// True when `requested` may be used as the redirect URI of a client registered with
/// `registered`: byte-for-byte equality, or, for public clients only, equality except for the
/// port of an `http` loopback IP literal (RFC 8252 §7.3).
pub fn is_registered(registered: &[String], requested: &str, public: bool) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    public
        && loopback_without_port(requested).is_some_and(|req| {
            registered
                .iter()
                .any(|r| loopback_without_port(r) == Some(req.clone()))
        })
}

/// The URI with its port removed, when it is `http` on a loopback IP literal and its text is
/// already in canonical form (so no parser leniency can widen the match). An explicit `:80`,
/// which the parser drops from the canonical form, is the one difference allowed: RFC 8252
/// §7.3 allows any port.
/// For the developer of a client whose redirect URI was refused: how the received one differs
/// from the closest registered one, without saying what is registered (the error page is
/// public, and registered URIs may name internal hosts).
pub fn near_miss(registered: &[String], received: &str) -> &'static str {
    let Ok(got) = Url::parse(received) else {
        return "The redirect_uri received is not an absolute URI.";
    };
    let differs_only = |change: &dyn Fn(&mut Url)| {
        registered
            .iter()
            .filter_map(|r| Url::parse(r).ok())
            .any(|mut r| {
                let mut g = got.clone();
                change(&mut r);
                change(&mut g);
                r == g
            })
    };
    let trim_slash = |u: &mut Url| {
        let path = u.path().trim_end_matches('/').to_owned();
        u.set_path(&path);
    };
    let no_scheme = |u: &mut Url| {
        let _ = u.set_scheme("https");
    };
    let no_port = |u: &mut Url| {
        let _ = u.set_port(None);
    };
    let no_query = |u: &mut Url| u.set_query(None);
    let lower_path = |u: &mut Url| {
        let path = u.path().to_ascii_lowercase();
        u.set_path(&path);
    };
    if differs_only(&trim_slash) {
        "It differs from a registered redirect URI only by a trailing slash."
    } else if differs_only(&no_scheme) {
        "It differs from a registered redirect URI only in its scheme (http or https)."
    } else if differs_only(&no_port) {
        "It differs from a registered redirect URI only in its port."
    } else if differs_only(&no_query) {
        "It differs from a registered redirect URI only in its query."
    } else if differs_only(&lower_path) {
        "It differs from a registered redirect URI only in upper or lower case."
    } else {
        "No registered redirect URI is close to it; `latchkey client show CLIENT_ID` lists them."
    }
}

fn loopback_without_port(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw).ok()?;
    let canonical = url.as_str() == raw || is_canonical_with_port_80(&url, raw);
    if !canonical || url.scheme() != "http" || !url.username().is_empty() {
        return None;
    }
    match url.host()? {
        Host::Ipv4(ip) if ip.is_loopback() => {}
        Host::Ipv6(ip) if ip.is_loopback() => {}
        _ => return None,
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

/// `raw` is `url`'s canonical text with an explicit default port (`http://127.0.0.1:80/cb`).
fn is_canonical_with_port_80(url: &Url, raw: &str) -> bool {
    url.port().is_none()
        && url.host_str().is_some_and(|host| {
            raw == format!(
                "{}://{host}:80{}",
                url.scheme(),
                &url[url::Position::BeforePath..]
            )
        })
}

/// `localhost` or a loopback IP literal (RFC 8252 §7.3, §8.3).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod near_miss_tests {
    use super::near_miss;

    #[test]
    fn names_the_one_difference_without_the_registered_value() {
        let registered = vec!["https://app.example/cb?x=1".to_owned()];
        let hint = |got: &str| near_miss(&registered, got);
        assert!(hint("https://app.example/cb/?x=1").contains("trailing slash"));
        assert!(hint("http://app.example/cb?x=1").contains("scheme"));
        assert!(hint("https://app.example:8443/cb?x=1").contains("port"));
        assert!(hint("https://app.example/cb").contains("query"));
        assert!(hint("https://app.example/CB?x=1").contains("case"));
        assert!(hint("https://evil.example/cb?x=1").contains("No registered redirect URI"));
        assert!(hint("/relative").contains("not an absolute URI"));
        for got in ["https://app.example/cb/?x=1", "https://evil.example/"] {
            assert!(!hint(got).contains("app.example"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a06_loopback_port_80_written_out_matches_for_public_clients_only() {
        let registered = ["http://127.0.0.1/cb".to_owned()];
        assert!(is_registered(&registered, "http://127.0.0.1:80/cb", true));
        assert!(is_registered(&registered, "http://127.0.0.1:8080/cb", true));
        assert!(!is_registered(&registered, "http://127.0.0.1:80/cb", false));
        assert!(!is_registered(&registered, "http://127.0.0.1:80/cb/", true));
        assert!(!is_registered(&registered, "http://127.0.0.1:080/cb", true));
        let v6 = ["http://[::1]:9/cb".to_owned()];
        assert!(is_registered(&v6, "http://[::1]:80/cb", true));
    }

    #[test]
    fn a05_registration_refuses_every_unsafe_form() {
        let cases = [
            ("https://a.example/cb#x", RedirectUriError::Fragment),
            ("JavaScript:alert(1)", RedirectUriError::DangerousScheme),
            ("DATA:text/html,x", RedirectUriError::DangerousScheme),
            ("http://a.example/cb", RedirectUriError::PlainHttp),
            ("https://*.a.example/cb", RedirectUriError::Wildcard),
            (
                "https://a.example/cb?code=x",
                RedirectUriError::ReservedQueryParameter,
            ),
            (
                "https://a.example/cb?state=1",
                RedirectUriError::ReservedQueryParameter,
            ),
            (
                "https://a.example/cb?iss=1",
                RedirectUriError::ReservedQueryParameter,
            ),
            ("https://u:p@a.example/cb", RedirectUriError::UserInfo),
            ("/relative", RedirectUriError::NotAbsolute),
            ("https://a.example/c b", RedirectUriError::BadCharacter),
            (
                "com.example.app:/cb",
                RedirectUriError::CustomSchemeForConfidentialClient,
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(validate_registration(uri, false), Err(expected), "{uri}");
        }
    }

    #[test]
    fn registration_accepts_https_loopback_http_and_native_schemes() {
        assert_eq!(
            validate_registration("https://app.example/cb?x=1", false),
            Ok(())
        );
        assert_eq!(validate_registration("http://127.0.0.1/cb", false), Ok(()));
        assert_eq!(validate_registration("http://[::1]:8080/cb", false), Ok(()));
        assert_eq!(validate_registration("com.example.app:/cb", true), Ok(()));
    }

    #[test]
    fn matching_is_exact_for_confidential_clients() {
        let reg = vec!["https://app.example/cb".to_owned()];
        assert!(is_registered(&reg, "https://app.example/cb", false));
        for other in [
            "https://app.example/CB",
            "HTTPS://app.example/cb",
            "https://app.example/cb/",
            "https://app.example:443/cb",
            "https://app.example/%63b",
        ] {
            assert!(!is_registered(&reg, other, false), "{other}");
        }
    }

    #[test]
    fn loopback_port_is_free_only_for_public_clients_rfc8252_7_3() {
        let reg = vec!["http://127.0.0.1/cb".to_owned()];
        assert!(is_registered(&reg, "http://127.0.0.1:53211/cb", true));
        assert!(!is_registered(&reg, "http://127.0.0.1:53211/cb", false));
        for other in [
            "http://127.0.0.1:53211/cb?bar=foo",
            "http://127.0.0.1/cb/x",
            "http://127.0.0.1.evil.test/cb",
            "http://127.0.0.1@evil.test/cb",
            "http://127.0.0.1:80@evil.test/cb",
            "http://localhost:53211/cb",
            "https://127.0.0.1:53211/cb",
        ] {
            assert!(!is_registered(&reg, other, true), "{other}");
        }
    }
}
