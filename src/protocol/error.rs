//! The wire vocabulary of OAuth errors, and the fine-grained causes that map onto it.
//!
//! Causes are precise so logs and tests can tell them apart; the client only ever sees the
//! small RFC vocabulary and a fixed ASCII description that echoes no input.

/// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and OIDC Core §3.1.2.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    UnsupportedTokenType,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// Why an authorization request cannot even be answered by redirect: the client or the
/// redirect URI is not trustworthy (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2). The user sees an
/// HTML error page with status 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UntrustedRequest {
    #[error("The request does not name a client (client_id is missing).")]
    MissingClientId,
    #[error("The request names a client that is not registered here.")]
    UnknownClient,
    #[error("The request repeats client_id or redirect_uri.")]
    RepeatedClientOrRedirect,
    #[error("The request has no redirect_uri; Latchkey always requires one.")]
    MissingRedirectUri,
    #[error("The redirect_uri is not registered for this client (it must match byte for byte).")]
    UnregisteredRedirectUri,
    #[error("The logout request repeats a parameter.")]
    RepeatedLogoutParameter,
    #[error(
        "The post_logout_redirect_uri is not registered for this client, or the request does not name the client (send id_token_hint or client_id)."
    )]
    UnregisteredPostLogoutRedirectUri,
    #[error("The id_token_hint was issued to another client than client_id names.")]
    LogoutClientMismatch,
}

impl UntrustedRequest {
    /// For the client's developer: what to change. Shown on the error page under the user's
    /// message; it names parameters, never values.
    pub fn fix(self) -> &'static str {
        use UntrustedRequest::*;
        match self {
            MissingClientId => {
                "Send client_id with the client's identifier, as `latchkey client create` printed it."
            }
            UnknownClient => {
                "No client has this client_id. Check it against `latchkey client list` on this server; clients are per database, so one registered on another deployment is unknown here."
            }
            RepeatedClientOrRedirect => {
                "Send client_id and redirect_uri once each: with two values Latchkey cannot tell which one is meant (RFC 6749 §3.1)."
            }
            MissingRedirectUri => {
                "Send redirect_uri, set to one of the client's registered redirect URIs (`latchkey client show CLIENT_ID` lists them). Latchkey always requires it, so the token request can be held to the same value."
            }
            UnregisteredRedirectUri => {
                "Send one of the client's registered redirect URIs exactly: scheme, host, port, path and query are compared character for character (RFC 9700 §4.1.3), so a trailing slash, http for https or another port all differ. Only loopback redirect URIs of public clients may change the port (RFC 8252 §7.3). To use another URI, register a client with it (`latchkey client create --redirect-uri …`)."
            }
            RepeatedLogoutParameter => "Send each parameter of the logout request once.",
            UnregisteredPostLogoutRedirectUri => {
                "Send a post_logout_redirect_uri registered for the client (`latchkey client create --post-logout-redirect-uri …`), and name the client with id_token_hint or client_id."
            }
            LogoutClientMismatch => {
                "Send the ID token of the client that client_id names, or leave client_id out."
            }
        }
    }
}

/// Why an authorization request is refused once client and redirect URI are known to be good:
/// these are answered by redirect to the client (RFC 6749 §4.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    #[error("A parameter is repeated.")]
    RepeatedParameter,
    #[error("response_type is missing.")]
    MissingResponseType,
    #[error("state must be printable ASCII (RFC 6749 Appendix A.5).")]
    InvalidState,
    #[error("nonce must be printable ASCII of at most 2048 characters.")]
    InvalidNonce,
    #[error("max_age must be a non-negative number of seconds.")]
    InvalidMaxAge,
    #[error("login_hint or id_token_hint is malformed.")]
    InvalidHint,
    #[error("id_token_hint names a different user than the one signed in.")]
    HintMismatch,
    #[error("Request objects (the request parameter) are not supported.")]
    RequestObjectNotSupported,
    #[error("request_uri is not supported.")]
    RequestUriNotSupported,
    #[error("Only response_type=code is supported.")]
    UnsupportedResponseType,
    #[error("Only response_mode=query is supported.")]
    UnsupportedResponseMode,
    #[error("The client is not allowed the authorization_code grant.")]
    GrantNotAllowed,
    #[error("The scope is malformed.")]
    MalformedScope,
    #[error("The client may not request one of the scopes.")]
    ScopeNotAllowed,
    #[error("No scope was requested and the client has no default scope.")]
    EmptyScope,
    #[error("PKCE is required: send code_challenge with code_challenge_method=S256.")]
    PkceRequired,
    #[error("Only code_challenge_method=S256 is supported.")]
    UnsupportedChallengeMethod,
    #[error("code_challenge must be 43 characters of base64url (S256).")]
    MalformedChallenge,
    #[error("The prompt parameter is not understood.")]
    InvalidPrompt,
    #[error("The user denied the request.")]
    AccessDenied,
    #[error("The user must log in.")]
    LoginRequired,
    #[error("The user must give consent.")]
    ConsentRequired,
}

impl AuthorizeError {
    pub fn code(self) -> ErrorCode {
        use AuthorizeError::*;
        match self {
            RepeatedParameter
            | MissingResponseType
            | InvalidState
            | InvalidNonce
            | InvalidMaxAge
            | InvalidHint
            | UnsupportedResponseMode
            | PkceRequired
            | UnsupportedChallengeMethod
            | MalformedChallenge
            | InvalidPrompt => ErrorCode::InvalidRequest,
            UnsupportedResponseType => ErrorCode::UnsupportedResponseType,
            GrantNotAllowed => ErrorCode::UnauthorizedClient,
            MalformedScope | ScopeNotAllowed | EmptyScope => ErrorCode::InvalidScope,
            AccessDenied => ErrorCode::AccessDenied,
            LoginRequired | HintMismatch => ErrorCode::LoginRequired,
            ConsentRequired => ErrorCode::ConsentRequired,
            RequestObjectNotSupported => ErrorCode::RequestNotSupported,
            RequestUriNotSupported => ErrorCode::RequestUriNotSupported,
        }
    }
}

/// Why a token request fails (RFC 6749 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("A parameter is repeated.")]
    RepeatedParameter,
    /// Names the parameter, so the developer sees which one.
    #[error("The required parameter {0} is missing.")]
    MissingParameter(&'static str),
    #[error("The request must be an application/x-www-form-urlencoded POST.")]
    WrongContentType,
    #[error("Only one client authentication method may be used per request.")]
    MultipleAuthMethods,
    #[error("Client credentials are not accepted in the URL query.")]
    CredentialsInQuery,
    #[error("Client authentication failed.")]
    ClientAuthFailed,
    #[error("Client authentication failed.")]
    BasicAuthFailed,
    #[error("The grant_type is not supported.")]
    UnsupportedGrantType,
    #[error("The client is not allowed this grant type.")]
    GrantNotAllowed,
    #[error("The authorization code is invalid, expired or already used.")]
    InvalidCode,
    #[error("The authorization code was already used; tokens issued from it are revoked.")]
    CodeReplayed,
    #[error("The authorization code was issued to another client.")]
    CodeClientMismatch,
    #[error("redirect_uri does not match the authorization request.")]
    RedirectUriMismatch,
    #[error("The PKCE code_verifier is missing or does not match the code_challenge.")]
    PkceMismatch,
    #[error("The refresh token is invalid, expired or revoked.")]
    InvalidRefreshToken,
    #[error("The refresh token was already used; its whole family is revoked.")]
    RefreshReplayed,
    #[error("The requested scope exceeds the scope originally granted.")]
    ScopeWidened,
    #[error("The scope is malformed.")]
    MalformedScope,
    #[error("The client may not request one of the scopes.")]
    ScopeNotAllowed,
}

impl TokenError {
    pub fn code(self) -> ErrorCode {
        use TokenError::*;
        match self {
            RepeatedParameter | MissingParameter(_) | WrongContentType | MultipleAuthMethods
            | CredentialsInQuery => ErrorCode::InvalidRequest,
            ClientAuthFailed | BasicAuthFailed => ErrorCode::InvalidClient,
            UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            GrantNotAllowed => ErrorCode::UnauthorizedClient,
            InvalidCode | CodeReplayed | CodeClientMismatch | RedirectUriMismatch
            | PkceMismatch | InvalidRefreshToken | RefreshReplayed => ErrorCode::InvalidGrant,
            ScopeWidened | MalformedScope | ScopeNotAllowed => ErrorCode::InvalidScope,
        }
    }

    /// RFC 6749 §5.2: a failed Basic authentication answers 401 with `WWW-Authenticate`.
    pub fn is_basic_challenge(self) -> bool {
        self == TokenError::BasicAuthFailed
    }
}

/// Why a bearer token is refused at a protected resource (RFC 6750 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("No bearer token was sent in the Authorization header.")]
    Missing,
    #[error("The access token is invalid, expired or revoked.")]
    InvalidToken,
    #[error("The access token does not carry a scope this resource needs.")]
    InsufficientScope,
    #[error("The request sent the access token in more than one place.")]
    InvalidRequest,
}
