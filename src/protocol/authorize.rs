//! The authorization request (RFC 6749 §4.1.1) and its checks, in the order that keeps an
//! untrusted redirect URI from ever receiving an error (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).

use crate::protocol::error::{AuthorizeError, UntrustedRequest};
use crate::protocol::params::Params;
use crate::protocol::pkce;
use crate::protocol::redirect_uri;
use crate::protocol::types::{Client, GrantType, Scopes};

/// The `prompt` values Latchkey acts on (OIDC Core §3.1.2.1, also useful to plain OAuth).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Never show a page: answer `login_required` / `consent_required` instead.
    pub none: bool,
    /// Ask for the password even with a live session.
    pub login: bool,
    /// Ask for consent even when an earlier grant covers the request.
    pub consent: bool,
}

impl Prompt {
    fn parse(raw: Option<&str>) -> Result<Self, AuthorizeError> {
        let mut prompt = Prompt::default();
        for value in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => return Err(AuthorizeError::InvalidPrompt),
            }
        }
        // OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error
        // is returned."
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(AuthorizeError::InvalidPrompt);
        }
        Ok(prompt)
    }

    /// The canonical text, for storing with a pending request.
    pub fn as_string(self) -> String {
        let mut parts = Vec::new();
        if self.none {
            parts.push("none");
        }
        if self.login {
            parts.push("login");
        }
        if self.consent {
            parts.push("consent");
        }
        parts.join(" ")
    }

    /// Reads back what [`Prompt::as_string`] wrote.
    pub fn from_stored(raw: &str) -> Self {
        Prompt::parse(Some(raw)).unwrap_or_default()
    }
}

/// A validated authorization request: every field has passed its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Scopes,
    pub state: Option<String>,
    /// The S256 challenge; `None` only for a confidential client opted out of PKCE.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub oidc: OidcParameters,
}

/// The OpenID Connect parameters of an authorization request (OIDC Core §3.1.2.1) that outlive
/// it: kept with the pending request until the code is issued.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcParameters {
    /// Returned unchanged in the ID token, binding it to the client's session.
    pub nonce: Option<String>,
    /// Seconds since the last active authentication beyond which the user must log in again.
    pub max_age: Option<i64>,
    /// A hint of who is logging in: pre-fills the username.
    pub login_hint: Option<String>,
}

/// Longest `nonce`, `login_hint` or `id_token_hint` accepted; they are stored or parsed.
pub const MAX_OIDC_PARAMETER: usize = 2048;

/// Step 1: which client the request names. RFC 6749 §4.1.2.1: with a missing or invalid client
/// identifier "the authorization server SHOULD inform the resource owner of the error and MUST
/// NOT automatically redirect the user-agent".
pub fn requested_client_id(params: &Params) -> Result<&str, UntrustedRequest> {
    if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
        return Err(UntrustedRequest::RepeatedClientOrRedirect);
    }
    params
        .get("client_id")
        .ok_or(UntrustedRequest::MissingClientId)
}

/// Step 2: the redirect URI must be registered for the client, byte for byte (RFC 9700 §4.1.3),
/// with the loopback port exception for native clients (RFC 8252 §7.3). Latchkey always
/// requires `redirect_uri`, as OAuth 2.1 and OIDC do, so the token request can always be held
/// to the same value (checklist item 4).
pub fn registered_redirect_uri<'p>(
    params: &'p Params,
    client: &Client,
) -> Result<&'p str, UntrustedRequest> {
    let requested = params
        .get("redirect_uri")
        .ok_or(UntrustedRequest::MissingRedirectUri)?;
    if redirect_uri::is_registered(&client.redirect_uris, requested, client.public) {
        Ok(requested)
    } else {
        Err(UntrustedRequest::UnregisteredRedirectUri)
    }
}

impl AuthorizationRequest {
    /// Step 3: with client and redirect URI trusted, the remaining checks; each failure is
    /// answered by redirect to `redirect_uri`.
    pub fn validate(
        params: &Params,
        client: &Client,
        redirect_uri: &str,
    ) -> Result<Self, AuthorizeError> {
        // RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
        if params.has_repeats() {
            return Err(AuthorizeError::RepeatedParameter);
        }
        // RFC 6749 §4.1.1: response_type REQUIRED, "Value MUST be set to code".
        match params.get("response_type") {
            None => return Err(AuthorizeError::MissingResponseType),
            Some("code") => {}
            Some(_) => return Err(AuthorizeError::UnsupportedResponseType),
        }
        // RFC 6749 Appendix A.5: state is 1*VSCHAR. Anything else (a NUL, bytes that were not
        // UTF-8) could not be returned "exactly" as §4.1.2 requires.
        if params
            .get("state")
            .is_some_and(|state| !is_valid_state(state))
        {
            return Err(AuthorizeError::InvalidState);
        }
        // Codes are only ever delivered in the query (RFC 9700 §2.1: no fragment delivery).
        if params
            .get("response_mode")
            .is_some_and(|mode| mode != "query")
        {
            return Err(AuthorizeError::UnsupportedResponseMode);
        }
        // RFC 6749 §4.1.2.1 unauthorized_client: "The client is not authorized to request an
        // authorization code using this method."
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(AuthorizeError::GrantNotAllowed);
        }
        // OIDC Core §6: request objects are optional for an OP; say so with the OIDC codes.
        if params.get("request").is_some() {
            return Err(AuthorizeError::RequestObjectNotSupported);
        }
        if params.get("request_uri").is_some() {
            return Err(AuthorizeError::RequestUriNotSupported);
        }
        let scope = requested_scope(params.get("scope"), client)?;
        let code_challenge = checked_challenge(params, client)?;
        let prompt = Prompt::parse(params.get("prompt"))?;
        let oidc = oidc_parameters(params)?;
        Ok(AuthorizationRequest {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope,
            state: params.get("state").map(str::to_owned),
            code_challenge,
            prompt,
            oidc,
        })
    }
}

/// OIDC Core §3.1.2.1: `nonce`, `max_age` and `login_hint` as they will be kept; `display`,
/// `ui_locales`, `claims_locales`, `acr_values` and `claims` are accepted and not acted on
/// (the pages have one display and one language). `id_token_hint` is checked by the caller,
/// which holds the keys; here only its size.
fn oidc_parameters(params: &Params) -> Result<OidcParameters, AuthorizeError> {
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_OIDC_PARAMETER || !is_valid_state(n)) {
        return Err(AuthorizeError::InvalidNonce);
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u32>()
                .map_err(|_| AuthorizeError::InvalidMaxAge)?
                .into(),
        ),
    };
    let login_hint = params.get("login_hint");
    let malformed =
        |hint: &str| hint.len() > MAX_OIDC_PARAMETER || hint.chars().any(char::is_control);
    if login_hint.is_some_and(malformed) || params.get("id_token_hint").is_some_and(malformed) {
        return Err(AuthorizeError::InvalidHint);
    }
    Ok(OidcParameters {
        nonce: nonce.map(str::to_owned),
        max_age,
        login_hint: login_hint.map(str::to_owned),
    })
}

/// RFC 6749 Appendix A.5: `state = 1*VSCHAR`, VSCHAR = %x20-7E.
pub fn is_valid_state(state: &str) -> bool {
    !state.is_empty() && state.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// RFC 6749 §3.3: when scope is omitted the server "MUST either process the request using a
/// pre-defined default value or fail"; Latchkey uses the client's registered scopes. A scope the
/// client may not request is refused, never silently narrowed (RFC 9700 §2.3).
fn requested_scope(raw: Option<&str>, client: &Client) -> Result<Scopes, AuthorizeError> {
    let scope = match raw {
        None => client.scopes.clone(),
        Some(raw) => Scopes::parse(raw).map_err(|_| AuthorizeError::MalformedScope)?,
    };
    if scope.is_empty() {
        return Err(AuthorizeError::EmptyScope);
    }
    if !scope.is_subset(&client.scopes) {
        return Err(AuthorizeError::ScopeNotAllowed);
    }
    Ok(scope)
}

/// RFC 9700 §2.1.1: PKCE with S256; RFC 7636 §4.3 defaults a missing method to `plain`, so a
/// missing method is refused like `plain` itself.
fn checked_challenge(params: &Params, client: &Client) -> Result<Option<String>, AuthorizeError> {
    let method = params.get("code_challenge_method");
    match (params.get("code_challenge"), method) {
        (None, None) if client.public || client.require_pkce => Err(AuthorizeError::PkceRequired),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(AuthorizeError::PkceRequired),
        (Some(_), Some(m)) if m != "S256" => Err(AuthorizeError::UnsupportedChallengeMethod),
        (Some(_), None) => Err(AuthorizeError::UnsupportedChallengeMethod),
        (Some(challenge), Some(_)) if pkce::is_valid_s256_challenge(challenge) => {
            Ok(Some(challenge.to_owned()))
        }
        (Some(_), Some(_)) => Err(AuthorizeError::MalformedChallenge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::SigningAlg;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(public: bool) -> Client {
        Client {
            id: "web1".into(),
            name: "Web".into(),
            public,
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: Scopes::parse("openid profile").unwrap(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            require_pkce: true,
            access_token_alg: SigningAlg::ES256,
            audience: None,
            created_at: 0,
            id_token_alg: SigningAlg::RS256,
            post_logout_redirect_uris: Vec::new(),
        }
    }

    fn validate(query: &str, public: bool) -> Result<AuthorizationRequest, AuthorizeError> {
        let params = Params::parse(query.as_bytes());
        AuthorizationRequest::validate(&params, &client(public), "https://app.example/cb")
    }

    #[test]
    fn a_complete_request_passes() {
        let q = format!(
            "response_type=code&scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        let request = validate(&q, false).unwrap();
        assert_eq!(request.scope.to_string(), "openid");
        assert_eq!(request.state.as_deref(), Some("s"));
    }

    #[test]
    fn each_rule_fails_with_its_own_error() {
        let pkce = format!("code_challenge={CHALLENGE}&code_challenge_method=S256");
        let cases = [
            (
                format!("response_type=token&{pkce}"),
                AuthorizeError::UnsupportedResponseType,
            ),
            (
                format!("response_type=code%20token&{pkce}"),
                AuthorizeError::UnsupportedResponseType,
            ),
            (pkce.clone(), AuthorizeError::MissingResponseType),
            (
                format!("response_type=code&response_mode=fragment&{pkce}"),
                AuthorizeError::UnsupportedResponseMode,
            ),
            (
                format!("response_type=code&scope=admin&{pkce}"),
                AuthorizeError::ScopeNotAllowed,
            ),
            (
                format!("response_type=code&scope=a%22b&{pkce}"),
                AuthorizeError::MalformedScope,
            ),
            (
                "response_type=code".to_owned(),
                AuthorizeError::PkceRequired,
            ),
            (
                format!(
                    "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain"
                ),
                AuthorizeError::UnsupportedChallengeMethod,
            ),
            (
                format!("response_type=code&code_challenge={CHALLENGE}"),
                AuthorizeError::UnsupportedChallengeMethod,
            ),
            (
                "response_type=code&code_challenge=abc&code_challenge_method=S256".to_owned(),
                AuthorizeError::MalformedChallenge,
            ),
            (
                format!("response_type=code&prompt=none%20login&{pkce}"),
                AuthorizeError::InvalidPrompt,
            ),
            (
                format!("response_type=code&state=a&state=b&{pkce}"),
                AuthorizeError::RepeatedParameter,
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(validate(&query, false), Err(expected), "{query}");
        }
    }

    #[test]
    fn missing_scope_means_the_client_defaults() {
        let q = format!("response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256");
        assert_eq!(
            validate(&q, true).unwrap().scope.to_string(),
            "openid profile"
        );
    }

    #[test]
    fn confidential_client_opted_out_of_pkce_may_omit_it() {
        let mut opted_out = client(false);
        opted_out.require_pkce = false;
        let params = Params::parse(b"response_type=code");
        let request =
            AuthorizationRequest::validate(&params, &opted_out, "https://app.example/cb").unwrap();
        assert_eq!(request.code_challenge, None);
    }

    #[test]
    fn client_and_redirect_problems_are_untrusted() {
        let params = Params::parse(b"client_id=a&client_id=b");
        assert_eq!(
            requested_client_id(&params),
            Err(UntrustedRequest::RepeatedClientOrRedirect)
        );
        let params = Params::parse(b"redirect_uri=https://evil.test/");
        assert_eq!(
            requested_client_id(&params),
            Err(UntrustedRequest::MissingClientId)
        );
        assert_eq!(
            registered_redirect_uri(&params, &client(false)),
            Err(UntrustedRequest::UnregisteredRedirectUri)
        );
    }
}
