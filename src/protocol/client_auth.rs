//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::protocol::types::ClientSecret;

/// How a confidential client presented its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_secret_basic`: HTTP Basic, id and secret form-urlencoded first (RFC 6749 §2.3.1).
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// The credentials a request presents, before they are checked against the client record.
#[derive(Debug)]
pub enum ClientCredentials {
    /// A confidential client's id and secret.
    Secret {
        client_id: String,
        secret: ClientSecret,
        method: AuthMethod,
    },
    /// A public client identifies itself with `client_id` only (method `none`).
    Public { client_id: String },
}

impl ClientCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            ClientCredentials::Secret { client_id, .. }
            | ClientCredentials::Public { client_id } => client_id,
        }
    }

    /// The error a failed check of these credentials answers: RFC 6749 §5.2 asks for 401 and
    /// `WWW-Authenticate` when the client used the Authorization header.
    pub fn failure(&self) -> TokenError {
        match self {
            ClientCredentials::Secret {
                method: AuthMethod::Basic,
                ..
            } => TokenError::BasicAuthFailed,
            _ => TokenError::ClientAuthFailed,
        }
    }
}

/// Reads the client's credentials from the `Authorization` header and the form body, removing
/// them from `params`. RFC 6749 §2.3: "The client MUST NOT use more than one authentication
/// method in each request."
pub fn parse(
    authorization: Option<&str>,
    params: &mut Params,
) -> Result<ClientCredentials, TokenError> {
    if params.is_repeated("client_id") || params.is_repeated("client_secret") {
        return Err(TokenError::RepeatedParameter);
    }
    let body_id = params.take("client_id");
    let body_secret = params.take("client_secret").map(ClientSecret::new);
    let basic = authorization
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim());

    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(TokenError::MultipleAuthMethods),
        (Some(encoded), body_id, None) => {
            let (client_id, secret) = decode_basic(encoded).ok_or(TokenError::BasicAuthFailed)?;
            if body_id.is_some_and(|id| id != client_id) {
                return Err(TokenError::MultipleAuthMethods);
            }
            Ok(ClientCredentials::Secret {
                client_id,
                secret,
                method: AuthMethod::Basic,
            })
        }
        (None, Some(client_id), Some(secret)) => Ok(ClientCredentials::Secret {
            client_id,
            secret,
            method: AuthMethod::Post,
        }),
        (None, Some(client_id), None) => Ok(ClientCredentials::Public { client_id }),
        (None, None, _) => Err(TokenError::ClientAuthFailed),
    }
}

/// RFC 6749 §2.3.1: "The client identifier is encoded using the application/x-www-form-urlencoded
/// encoding algorithm ..., and the encoded value is used as the username; the client password is
/// encoded using the same algorithm and used as the password."
fn decode_basic(encoded: &str) -> Option<(String, ClientSecret)> {
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    if id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((id, ClientSecret::new(secret)))
}

fn form_decode(value: &str) -> Option<String> {
    let plus_as_space = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn basic_credentials_are_form_decoded_rfc6749_2_3_1() {
        let mut params = Params::default();
        let creds = parse(Some(&basic("my%3Aclient:se%2Bcret+x")), &mut params).unwrap();
        let ClientCredentials::Secret {
            client_id,
            secret,
            method,
        } = creds
        else {
            panic!("expected secret credentials")
        };
        assert_eq!(client_id, "my:client");
        assert_eq!(secret.expose(), "se+cret x");
        assert_eq!(method, AuthMethod::Basic);
    }

    #[test]
    fn two_methods_in_one_request_are_refused() {
        let mut params = Params::parse(b"client_secret=s");
        let err = parse(Some(&basic("a:b")), &mut params).unwrap_err();
        assert_eq!(err, TokenError::MultipleAuthMethods);
    }

    #[test]
    fn malformed_basic_header_is_a_basic_failure() {
        for header in ["Basic !!!", "Basic Zm9v", "Basic Om5vaWQ="] {
            let err = parse(Some(header), &mut Params::default()).unwrap_err();
            assert_eq!(err, TokenError::BasicAuthFailed, "{header}");
        }
    }

    #[test]
    fn client_id_alone_is_a_public_client() {
        let mut params = Params::parse(b"client_id=spa");
        let creds = parse(None, &mut params).unwrap();
        assert!(matches!(creds, ClientCredentials::Public { client_id } if client_id == "spa"));
    }

    #[test]
    fn no_credentials_at_all_is_invalid_client() {
        let err = parse(None, &mut Params::default()).unwrap_err();
        assert_eq!(err, TokenError::ClientAuthFailed);
    }
}
