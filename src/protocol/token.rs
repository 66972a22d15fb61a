//! Token requests (RFC 6749 §4.1.3 and §6) and the rules a code or refresh token must pass
//! before tokens are issued from it.

use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::protocol::pkce;
use crate::protocol::types::{AuthorizationCode, CodeVerifier, GrantType, RefreshToken, Scopes};

/// A token request, by `grant_type`.
#[derive(Debug)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3.
    AuthorizationCode {
        code: AuthorizationCode,
        redirect_uri: Option<String>,
        code_verifier: Option<CodeVerifier>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: RefreshToken,
        scope: Option<Scopes>,
    },
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<Scopes> },
}

impl TokenRequest {
    /// Parses the form body left after client credentials were taken out of it.
    pub fn parse(params: &mut Params) -> Result<Self, TokenError> {
        // RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
        if params.has_repeats() {
            return Err(TokenError::RepeatedParameter);
        }
        let grant_type = params
            .take("grant_type")
            .ok_or(TokenError::MissingParameter("grant_type"))?;
        match GrantType::parse(&grant_type) {
            Some(GrantType::AuthorizationCode) => Ok(TokenRequest::AuthorizationCode {
                code: params
                    .take("code")
                    .map(AuthorizationCode::new)
                    .ok_or(TokenError::MissingParameter("code"))?,
                redirect_uri: params.take("redirect_uri"),
                code_verifier: params.take("code_verifier").map(CodeVerifier::new),
            }),
            Some(GrantType::RefreshToken) => Ok(TokenRequest::RefreshToken {
                refresh_token: params
                    .take("refresh_token")
                    .map(RefreshToken::new)
                    .ok_or(TokenError::MissingParameter("refresh_token"))?,
                scope: params
                    .get("scope")
                    .map(Scopes::parse)
                    .transpose()
                    .map_err(|_| TokenError::MalformedScope)?,
            }),
            Some(GrantType::ClientCredentials) => Ok(TokenRequest::ClientCredentials {
                scope: params
                    .get("scope")
                    .map(Scopes::parse)
                    .transpose()
                    .map_err(|_| TokenError::MalformedScope)?,
            }),
            None => Err(TokenError::UnsupportedGrantType),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// What an authorization code was bound to when it was issued (RFC 6749 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeGrant {
    /// The grant (token family) the code starts; revoked as a whole on replay.
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub scope: Scopes,
    pub auth_time: i64,
    pub expires_at: i64,
    /// OIDC Core §3.1.2.1 `nonce`, returned unchanged in the ID token.
    pub nonce: Option<String>,
}

/// Scopes that name what a user grants (OIDC Core §5.4, §11); they mean nothing for a client
/// acting on its own, and a resource server could read them as a user's consent.
pub const USER_SCOPES: [&str; 6] = [
    "openid",
    "offline_access",
    "profile",
    "email",
    "address",
    "phone",
];

/// RFC 6749 §4.4.2 / §3.3: the scope of a client-credentials token: what was asked, which must
/// be among the client's scopes and not a user scope, or by default all of the client's scopes
/// but the user scopes.
pub fn client_credentials_scope(
    requested: Option<&Scopes>,
    allowed: &Scopes,
) -> Result<Scopes, TokenError> {
    match requested {
        Some(scope)
            if !scope.is_subset(allowed) || USER_SCOPES.iter().any(|s| scope.contains(s)) =>
        {
            Err(TokenError::ScopeNotAllowed)
        }
        Some(scope) => Ok(scope.clone()),
        None => {
            let own: Vec<&str> = allowed
                .iter()
                .filter(|s| !USER_SCOPES.contains(s))
                .collect();
            // A client with user scopes only has nothing to ask for itself.
            if own.is_empty() {
                return Err(TokenError::ScopeNotAllowed);
            }
            Scopes::parse(&own.join(" ")).map_err(|_| TokenError::MalformedScope)
        }
    }
}

/// What the token request presented alongside the code.
pub struct CodePresentation<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a CodeVerifier>,
    pub now: i64,
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6, in the order the RFCs list them. The code has already
/// been consumed when this runs, so a failure burns it (checklist items 28 and 32).
pub fn check_code(code: &CodeGrant, presented: &CodePresentation<'_>) -> Result<(), TokenError> {
    if presented.now >= code.expires_at {
        return Err(TokenError::InvalidCode);
    }
    // "ensure that the authorization code was issued to the authenticated confidential client,
    // or if the client is public, ensure that the code was issued to "client_id" in the request"
    if code.client_id != presented.client_id {
        return Err(TokenError::CodeClientMismatch);
    }
    // "ensure that the "redirect_uri" parameter is present if the "redirect_uri" parameter was
    // included in the initial authorization request ..., and if included ensure that their
    // values are identical."
    if presented.redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(TokenError::RedirectUriMismatch);
    }
    match (&code.code_challenge, presented.code_verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => Ok(()),
        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
        (None, None) => Ok(()),
        _ => Err(TokenError::PkceMismatch),
    }
}

/// The state of a refresh-token family as the refresh rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshGrant {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Scopes,
    pub auth_time: i64,
    /// The family's absolute end (`--refresh-token-ttl`).
    pub expires_at: i64,
    pub revoked: bool,
    pub user_disabled: bool,
    /// When the presented refresh token was issued, i.e. the family's last use; `None` when the
    /// grant was looked up for an access token.
    pub refreshed_at: Option<i64>,
}

impl RefreshGrant {
    /// Not revoked, user enabled, before the family's absolute end and, when a refresh token
    /// was presented, before its idle end.
    pub fn is_live(&self, idle_ttl: i64, now: i64) -> bool {
        let idle_ok = self
            .refreshed_at
            .is_none_or(|at| now < at.saturating_add(idle_ttl));
        !self.revoked && !self.user_disabled && now < self.expires_at && idle_ok
    }
}

/// RFC 6749 §6 and RFC 9700 §4.14.2: the token must belong to the authenticated client, its
/// family must be live, and "the requested scope MUST NOT include any scope not originally
/// granted by the resource owner". Returns the scope of the new access token. The client's
/// current allowed scopes also bound it (checklist item 55). RFC 9700 §4.14.2: "Refresh tokens
/// SHOULD expire if the client has been inactive for some time", so a family unused for
/// `idle_ttl` seconds ends too.
pub fn check_refresh(
    grant: &RefreshGrant,
    client_id: &str,
    client_scopes: &Scopes,
    requested: Option<&Scopes>,
    idle_ttl: i64,
    now: i64,
) -> Result<Scopes, TokenError> {
    if grant.client_id != client_id {
        return Err(TokenError::InvalidRefreshToken);
    }
    if !grant.is_live(idle_ttl, now) {
        return Err(TokenError::InvalidRefreshToken);
    }
    let scope = match requested {
        Some(scope) if !scope.is_subset(&grant.scope) => return Err(TokenError::ScopeWidened),
        Some(scope) => scope.clone(),
        None => grant.scope.clone(),
    };
    if !scope.is_subset(client_scopes) {
        return Err(TokenError::ScopeWidened);
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> CodeGrant {
        CodeGrant {
            grant_id: "g".into(),
            client_id: "web1".into(),
            user_id: "u".into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: Some(CHALLENGE.into()),
            scope: Scopes::parse("openid").unwrap(),
            auth_time: 0,
            expires_at: 100,
            nonce: None,
        }
    }

    fn present<'a>(
        client: &'a str,
        uri: Option<&'a str>,
        v: Option<&'a CodeVerifier>,
        now: i64,
    ) -> CodePresentation<'a> {
        CodePresentation {
            client_id: client,
            redirect_uri: uri,
            code_verifier: v,
            now,
        }
    }

    #[test]
    fn code_rules_each_reject() {
        let good = CodeVerifier::new(VERIFIER);
        let wrong = CodeVerifier::new(CHALLENGE);
        let uri = Some("https://app.example/cb");
        let cases = [
            (
                present("web1", uri, Some(&good), 100),
                TokenError::InvalidCode,
            ),
            (
                present("web2", uri, Some(&good), 1),
                TokenError::CodeClientMismatch,
            ),
            (
                present("web1", None, Some(&good), 1),
                TokenError::RedirectUriMismatch,
            ),
            (
                present("web1", Some("https://app.example/cb/"), Some(&good), 1),
                TokenError::RedirectUriMismatch,
            ),
            (present("web1", uri, None, 1), TokenError::PkceMismatch),
            (
                present("web1", uri, Some(&wrong), 1),
                TokenError::PkceMismatch,
            ),
        ];
        for (i, (p, expected)) in cases.iter().enumerate() {
            assert_eq!(check_code(&code(), p), Err(*expected), "case {i}");
        }
        assert_eq!(
            check_code(&code(), &present("web1", uri, Some(&good), 99)),
            Ok(())
        );
    }

    #[test]
    fn verifier_for_a_code_without_challenge_is_a_downgrade() {
        let mut no_pkce = code();
        no_pkce.code_challenge = None;
        let v = CodeVerifier::new(VERIFIER);
        let p = present("web1", Some("https://app.example/cb"), Some(&v), 1);
        assert_eq!(check_code(&no_pkce, &p), Err(TokenError::PkceMismatch));
    }

    #[test]
    fn refresh_scope_may_shrink_but_never_widen() {
        let grant = RefreshGrant {
            grant_id: "g".into(),
            client_id: "web1".into(),
            user_id: "u".into(),
            scope: Scopes::parse("read write").unwrap(),
            auth_time: 0,
            expires_at: 100,
            revoked: false,
            user_disabled: false,
            refreshed_at: Some(0),
        };
        let allowed = Scopes::parse("read write admin").unwrap();
        let narrower = Scopes::parse("read").unwrap();
        let wider = Scopes::parse("read admin").unwrap();
        assert_eq!(
            check_refresh(&grant, "web1", &allowed, Some(&narrower), 50, 1),
            Ok(narrower)
        );
        assert_eq!(
            check_refresh(&grant, "web1", &allowed, Some(&wider), 50, 1),
            Err(TokenError::ScopeWidened)
        );
        assert_eq!(
            check_refresh(&grant, "web2", &allowed, None, 50, 1),
            Err(TokenError::InvalidRefreshToken)
        );
        assert_eq!(
            check_refresh(&grant, "web1", &allowed, None, 500, 100),
            Err(TokenError::InvalidRefreshToken)
        );
    }

    #[test]
    fn unknown_grant_type_and_missing_fields() {
        let mut params = Params::parse(b"grant_type=password&username=a");
        assert_eq!(
            TokenRequest::parse(&mut params).unwrap_err(),
            TokenError::UnsupportedGrantType
        );
        let mut params = Params::parse(b"grant_type=authorization_code");
        assert_eq!(
            TokenRequest::parse(&mut params).unwrap_err(),
            TokenError::MissingParameter("code")
        );
        let mut params = Params::parse(b"grant_type=authorization_code&code=a&code=b");
        assert_eq!(
            TokenRequest::parse(&mut params).unwrap_err(),
            TokenError::RepeatedParameter
        );
    }
}
