//! The front channel: authorization request, login, consent, and the code sent back by
//! redirect (RFC 6749 §4.1.1–§4.1.2).
//!
//! Design note: a started request is stored server-side under the digest of an unguessable id
//! and bound to the browser that started it through a random cookie (`browser`). Login and
//! consent forms carry the id and a CSRF token derived from both, so a form can be replayed
//! neither from another browser nor by a cross-site page (RFC 6749 §10.12). Nothing the forms
//! post besides that id and the user's input is trusted (checklist item 21).

use url::Url;

use super::oidc;
use super::trail::Detail;
use super::{InternalError, Latchkey, session};
use crate::crypto::{self, ct_eq, token_hash};
use crate::protocol::authorize::{self, AuthorizationRequest};
use crate::protocol::error::{AuthorizeError, UntrustedRequest};
use crate::protocol::params::Params;
use crate::protocol::redirect_uri;
use crate::protocol::token::CodeGrant;
use crate::protocol::types::{AuthorizationCode, Client, Password, Scopes};
use crate::store::{NewAuthorizationCode, PendingRequest};

/// Where the browser goes next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Show the login page for this flow.
    Login { flow: String },
    /// Show the consent page for this flow.
    Consent { flow: String },
    /// Back to the client: an authorization response (success or error), already built.
    Client(String),
}

/// Why a front-channel step cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Client or redirect URI untrusted: an error page, never a redirect.
    #[error("{}", .0.cause)]
    Untrusted(Box<Untrusted>),
    /// The flow id is unknown, expired, already answered, or from another browser.
    #[error(
        "This sign-in request has expired or was already answered. Return to the application and start again."
    )]
    UnknownFlow,
    /// Too many failed logins for this username or address: wait this many seconds.
    #[error("Too many failed attempts. Try again in {0} seconds.")]
    Throttled(i64),
    /// The CSRF token or the request's origin is wrong (RFC 6749 §10.12).
    #[error("The form could not be verified. Reload the page and try again.")]
    Forbidden,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// An untrusted request with what the request carried that shows why, for the developer of the
/// client (no secret: these are the request's own public parameters and the client's
/// registration).
#[derive(Debug)]
pub struct Untrusted {
    pub cause: UntrustedRequest,
    pub facts: Vec<(String, String)>,
}

impl From<UntrustedRequest> for FlowError {
    fn from(cause: UntrustedRequest) -> Self {
        FlowError::Untrusted(Box::new(Untrusted {
            cause,
            facts: Vec::new(),
        }))
    }
}

impl FlowError {
    /// Adds a fact to an untrusted-request error; other errors pass unchanged.
    fn with_fact(mut self, name: &str, value: impl Into<String>) -> Self {
        if let FlowError::Untrusted(untrusted) = &mut self {
            untrusted
                .facts
                .push((name.to_owned(), shorten(value.into())));
        }
        self
    }
}

/// Records an untrusted request in the trail, with `operator_only` facts the page does not
/// show, and returns it.
fn refused(
    svc: &Latchkey,
    now: i64,
    error: FlowError,
    operator_only: &[(&str, &str)],
) -> FlowError {
    if let FlowError::Untrusted(untrusted) = &error {
        let mut detail = Detail::new()
            .with("reason", untrusted.cause.to_string())
            .with("answered", "error page, no redirect");
        for (name, value) in &untrusted.facts {
            detail = detail.append(name, value);
        }
        for (name, value) in operator_only {
            detail = detail.append(name, value);
        }
        svc.trail
            .record(now, None, None, "authorization_request_refused", detail);
    }
    error
}

/// Values shown on error pages are cut at 300 characters: enough to see a mistake.
fn shorten(mut value: String) -> String {
    if let Some((at, _)) = value.char_indices().nth(300) {
        value.truncate(at);
        value.push('…');
    }
    value
}

/// Result of [`begin`]: the next step, and the browser-binding cookie to set when it is new.
#[derive(Debug)]
pub struct Begun {
    pub next: Next,
    pub new_browser_cookie: Option<String>,
}

/// Handles an authorization request (RFC 6749 §4.1.1). `browser` is the binding cookie, if the
/// browser has one; `session` the login session cookie.
pub async fn begin(
    svc: &Latchkey,
    params: &Params,
    browser: Option<&str>,
    session: Option<&str>,
) -> Result<Begun, FlowError> {
    let now = svc.now();
    let client_id = authorize::requested_client_id(params)?;
    let client = svc
        .store
        .client(client_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            FlowError::from(UntrustedRequest::UnknownClient)
                .with_fact("client_id received", client_id)
        })?;
    let redirect_uri =
        authorize::registered_redirect_uri(params, &client.client).map_err(|cause| {
            let registered = &client.client.redirect_uris;
            let mut error = FlowError::from(cause).with_fact(
                "client",
                format!("{} ({})", client.client.name, client.client.id),
            );
            if let Some(received) = params.get("redirect_uri") {
                error = error
                    .with_fact("redirect_uri received", received)
                    .with_fact("compared", redirect_uri::near_miss(registered, received));
            }
            // The registered URIs go to the trail, which only the operator reads; the page is
            // public and they may name internal hosts.
            let operator_only = registered.join(", ");
            refused(
                svc,
                now,
                error,
                &[("registered redirect_uri", &operator_only)],
            )
        })?;
    let request = match AuthorizationRequest::validate(params, &client.client, redirect_uri) {
        Ok(request) => request,
        Err(error) => {
            // A state that is not 1*VSCHAR is not echoed.
            let state = params
                .get("state")
                .filter(|state| authorize::is_valid_state(state));
            let detail = Detail::new()
                .with("client_id", client.client.id.as_str())
                .with("redirect_uri", redirect_uri)
                .with("error", error.code().as_str())
                .with("reason", error.to_string())
                .with("answered", "by redirect to the client");
            svc.trail
                .record(now, None, None, "authorization_request_refused", detail);
            let next = Next::Client(error_response(
                &svc.settings.issuer,
                redirect_uri,
                state,
                error,
            ));
            return Ok(Begun {
                next,
                new_browser_cookie: None,
            });
        }
    };
    let mut session = match session {
        Some(cookie) if !request.prompt.login => session::live(svc, cookie, now).await?,
        _ => None,
    };
    // OIDC Core §3.1.2.1 max_age: a login older than that must be made again.
    // `max_age=0` is `prompt=login` (OIDC Core §3.1.2.1, errata set 2).
    if let Some(max_age) = request.oidc.max_age {
        session = session.filter(|s| max_age > 0 && s.auth_time.saturating_add(max_age) >= now);
    }
    // OIDC Core §3.1.2.1 id_token_hint: the user the client believes is signed in. Another
    // user's session does not count; with prompt=none that is login_required.
    if let Some(hint) = params.get("id_token_hint") {
        let Some(hinted) = oidc::hinted_subject(svc, &client.client, hint) else {
            return Ok(Begun {
                next: redirect_error(svc, &request, AuthorizeError::InvalidHint),
                new_browser_cookie: None,
            });
        };
        if session.as_ref().is_some_and(|s| s.user_id != hinted) {
            if request.prompt.none {
                return Ok(Begun {
                    next: redirect_error(svc, &request, AuthorizeError::HintMismatch),
                    new_browser_cookie: None,
                });
            }
            session = None;
        }
    }
    if request.prompt.none && session.is_none() {
        return Ok(Begun {
            next: redirect_error(svc, &request, AuthorizeError::LoginRequired),
            new_browser_cookie: None,
        });
    }
    let (browser, new_browser_cookie) = match browser {
        Some(value) => (value.to_owned(), None),
        None => {
            let value = crypto::random_token();
            (value.clone(), Some(value))
        }
    };
    let flow = crypto::random_token();
    let pending = PendingRequest {
        id_hash: token_hash(&flow),
        browser_hash: token_hash(&browser),
        request,
        user_id: session.as_ref().map(|s| s.user_id.clone()),
        auth_time: session.as_ref().map(|s| s.auth_time),
        expires_at: now + svc.settings.pending_ttl,
    };
    svc.store
        .insert_pending_request(&pending)
        .await
        .map_err(internal)?;
    let request = &pending.request;
    let detail = Detail::new()
        .with("client_id", request.client_id.as_str())
        .with("redirect_uri", request.redirect_uri.as_str())
        .with("scope", request.scope.to_string())
        .redacted("state", request.state.as_deref())
        .redacted("nonce", request.oidc.nonce.as_deref())
        .with(
            "pkce",
            if request.code_challenge.is_some() {
                "S256"
            } else {
                "none (client opted out)"
            },
        )
        .with("prompt", request.prompt.as_string())
        .with(
            "checks",
            "client known, redirect_uri registered, parameters valid",
        )
        .with(
            "session",
            if session.is_some() {
                "signed in already"
            } else {
                "none: login page next"
            },
        );
    svc.trail.record(
        now,
        Some(&pending.id_hash),
        None,
        "authorization_request",
        detail,
    );
    let next = match session {
        None => Next::Login { flow },
        Some(_) => after_login(svc, &client.client, &pending, flow, now).await?,
    };
    Ok(Begun {
        next,
        new_browser_cookie,
    })
}

/// What the login page shows.
#[derive(Debug)]
pub struct LoginPage {
    pub flow: String,
    pub csrf_token: String,
    pub client_name: String,
    /// The same message for an unknown user and a wrong password (checklist item 19).
    pub failed: bool,
    pub username: String,
}

/// The login page for a pending flow started by this browser.
pub async fn login_page(
    svc: &Latchkey,
    flow: &str,
    browser: Option<&str>,
) -> Result<LoginPage, FlowError> {
    let (pending, client) = bound_flow(svc, flow, browser).await?;
    Ok(LoginPage {
        flow: flow.to_owned(),
        csrf_token: session::csrf_token(browser.unwrap_or_default(), flow),
        client_name: client.name,
        failed: false,
        // OIDC Core §3.1.2.1 login_hint: pre-filled, still editable.
        username: pending.request.oidc.login_hint.unwrap_or_default(),
    })
}

/// What the login form posts.
pub struct LoginForm {
    pub flow: String,
    pub csrf_token: String,
    pub username: String,
    pub password: Password,
}

/// The outcome of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Wrong credentials: the page again, with the one failure message.
    Failed(LoginPage),
    /// A new session (fresh id: no fixation, ASVS 5.0 V7.2.4) and where to go next.
    LoggedIn { session_cookie: String, next: Next },
}

/// Checks the credentials of a login form (CONTRACT §4). Unknown users and wrong passwords take
/// the same path: an Argon2id verification against a dummy hash for unknown users.
pub async fn login(
    svc: &Latchkey,
    form: LoginForm,
    browser: Option<&str>,
    address: Option<std::net::IpAddr>,
) -> Result<LoginOutcome, FlowError> {
    let (pending, client) = bound_flow(svc, &form.flow, browser).await?;
    check_csrf(browser, &form.flow, &form.csrf_token)?;
    let user = session::verify_credentials(svc, &form.username, form.password, address).await?;
    let Some(user) = user else {
        tracing::info!(target: "audit", event = "login_failed", client_id = %client.id, username = %form.username);
        // Not the username: a password typed into that field must not be stored.
        let detail = Detail::new().with("reason", "wrong username or password");
        svc.trail.record(
            svc.now(),
            Some(&pending.id_hash),
            None,
            "login_failed",
            detail,
        );
        return Ok(LoginOutcome::Failed(LoginPage {
            flow: form.flow.clone(),
            csrf_token: form.csrf_token,
            client_name: client.name,
            failed: true,
            username: form.username,
        }));
    };
    let now = svc.now();
    let session_cookie = session::start(svc, &user.id, now).await?;
    if !svc
        .store
        .record_login(&pending.id_hash, &user.id, now)
        .await
        .map_err(internal)?
    {
        return Err(FlowError::UnknownFlow);
    }
    tracing::info!(target: "audit", event = "login_succeeded", client_id = %client.id, sub = %user.id, username = %user.username);
    let detail = Detail::new()
        .with("sub", user.id.as_str())
        .with("username", user.username.as_str());
    svc.trail
        .record(now, Some(&pending.id_hash), None, "login_succeeded", detail);
    let pending = PendingRequest {
        user_id: Some(user.id),
        auth_time: Some(now),
        ..pending
    };
    let next = after_login(svc, &client, &pending, form.flow, now).await?;
    Ok(LoginOutcome::LoggedIn {
        session_cookie,
        next,
    })
}

/// What the consent page shows.
#[derive(Debug)]
pub struct ConsentPage {
    pub flow: String,
    pub csrf_token: String,
    pub client_name: String,
    /// The host the browser will return to, so the user sees where the code goes.
    pub redirect_host: String,
    pub scopes: Vec<String>,
    /// An earlier grant exists and this request extends it.
    pub extends_grant: bool,
}

/// The step shown at the consent URL.
#[derive(Debug)]
pub enum ConsentStep {
    Show(ConsentPage),
    /// No session for the user who started consent: log in first.
    Login {
        flow: String,
    },
}

/// The consent page for a logged-in flow (CONTRACT §4).
pub async fn consent_page(
    svc: &Latchkey,
    flow: &str,
    browser: Option<&str>,
    session: Option<&str>,
) -> Result<ConsentStep, FlowError> {
    let (pending, client) = bound_flow(svc, flow, browser).await?;
    if !session_matches(svc, &pending, session).await? {
        return Ok(ConsentStep::Login {
            flow: flow.to_owned(),
        });
    }
    let user_id = pending.user_id.as_deref().unwrap_or_default();
    let earlier = svc
        .store
        .consent(user_id, &client.id)
        .await
        .map_err(internal)?;
    let redirect_host = Url::parse(&pending.request.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| pending.request.redirect_uri.clone());
    Ok(ConsentStep::Show(ConsentPage {
        flow: flow.to_owned(),
        csrf_token: session::csrf_token(browser.unwrap_or_default(), flow),
        client_name: client.name,
        redirect_host,
        scopes: pending.request.scope.iter().map(str::to_owned).collect(),
        extends_grant: earlier.is_some(),
    }))
}

/// What the consent form posts.
pub struct ConsentForm {
    pub flow: String,
    pub csrf_token: String,
    /// `allow` grants; anything else denies.
    pub allow: bool,
}

/// Records the user's decision and answers the client (RFC 6749 §4.1.2 / §4.1.2.1).
pub async fn decide(
    svc: &Latchkey,
    form: ConsentForm,
    browser: Option<&str>,
    session: Option<&str>,
) -> Result<Next, FlowError> {
    let (pending, client) = bound_flow(svc, &form.flow, browser).await?;
    check_csrf(browser, &form.flow, &form.csrf_token)?;
    if !session_matches(svc, &pending, session).await? {
        return Ok(Next::Login { flow: form.flow });
    }
    let now = svc.now();
    if !form.allow {
        if !svc
            .store
            .deny_pending_request(&pending.id_hash, now)
            .await
            .map_err(internal)?
        {
            return Err(FlowError::UnknownFlow);
        }
        tracing::info!(target: "audit", event = "consent_refused", client_id = %client.id);
        let detail = Detail::new().with("answered", "access_denied by redirect to the client");
        svc.trail
            .record(now, Some(&pending.id_hash), None, "consent_denied", detail);
        return Ok(redirect_error(
            svc,
            &pending.request,
            AuthorizeError::AccessDenied,
        ));
    }
    let user_id = pending.user_id.clone().unwrap_or_default();
    let earlier = svc
        .store
        .consent(&user_id, &client.id)
        .await
        .map_err(internal)?;
    let granted = earlier.map_or_else(
        || pending.request.scope.clone(),
        |s| s.union(&pending.request.scope),
    );
    tracing::info!(target: "audit", event = "consent_given", client_id = %client.id, sub = %user_id);
    let detail = Detail::new()
        .with("scope", pending.request.scope.to_string())
        .with("consent now covers", granted.to_string());
    svc.trail
        .record(now, Some(&pending.id_hash), None, "consent_given", detail);
    let url = issue_code(svc, &pending, Some(&granted), now).await?;
    Ok(Next::Client(url))
}

/// With the user known: answer at once when an earlier consent covers the request (CONTRACT
/// §4), otherwise ask; `prompt=none` answers `consent_required` instead of asking.
async fn after_login(
    svc: &Latchkey,
    client: &Client,
    pending: &PendingRequest,
    flow: String,
    now: i64,
) -> Result<Next, FlowError> {
    let request = &pending.request;
    let user_id = pending.user_id.as_deref().unwrap_or_default();
    let covered = svc
        .store
        .consent(user_id, &client.id)
        .await
        .map_err(internal)?
        .is_some_and(|granted| request.scope.is_subset(&granted));
    if covered && !request.prompt.consent {
        return Ok(Next::Client(issue_code(svc, pending, None, now).await?));
    }
    if request.prompt.none {
        let detail = Detail::new().with("answered", "consent_required (prompt=none)");
        svc.trail.record(
            now,
            Some(&pending.id_hash),
            None,
            "consent_required",
            detail,
        );
        svc.store
            .deny_pending_request(&pending.id_hash, now)
            .await
            .map_err(internal)?;
        return Ok(redirect_error(
            svc,
            request,
            AuthorizeError::ConsentRequired,
        ));
    }
    Ok(Next::Consent { flow })
}

/// Issues a 256-bit code bound to client, redirect URI, PKCE challenge, user, scope and
/// authentication time, consuming the pending request in the same transaction.
async fn issue_code(
    svc: &Latchkey,
    pending: &PendingRequest,
    consent: Option<&Scopes>,
    now: i64,
) -> Result<String, FlowError> {
    let request = &pending.request;
    let code = AuthorizationCode::new(crypto::random_token());
    let new_code = NewAuthorizationCode {
        code_hash: token_hash(code.expose()),
        grant: CodeGrant {
            grant_id: crypto::random_uuid(),
            client_id: request.client_id.clone(),
            user_id: pending.user_id.clone().unwrap_or_default(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            scope: request.scope.clone(),
            auth_time: pending.auth_time.unwrap_or(now),
            expires_at: now + svc.settings.code_ttl,
            nonce: request.oidc.nonce.clone(),
        },
    };
    let issued = svc
        .store
        .issue_authorization_code(&pending.id_hash, now, &new_code, consent)
        .await
        .map_err(internal)?;
    if !issued {
        return Err(FlowError::UnknownFlow);
    }
    tracing::info!(target: "audit", event = "code_issued", client_id = %request.client_id, sub = %new_code.grant.user_id);
    let consent_note = if consent.is_some() {
        "given on the consent page"
    } else {
        "an earlier consent covers the scope: no consent page"
    };
    let detail = Detail::new()
        .with("code", "[redacted]")
        .with("consent", consent_note)
        .with("scope", new_code.grant.scope.to_string())
        .with("expires_in", svc.settings.code_ttl)
        .with("sent to", request.redirect_uri.as_str());
    svc.trail.record(
        now,
        Some(&pending.id_hash),
        Some(&new_code.grant.grant_id),
        "code_issued",
        detail,
    );
    let mut pairs = vec![("code", code.expose())];
    if let Some(state) = &request.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &svc.settings.issuer));
    Ok(append_query(&request.redirect_uri, &pairs))
}

fn redirect_error(svc: &Latchkey, request: &AuthorizationRequest, error: AuthorizeError) -> Next {
    Next::Client(error_response(
        &svc.settings.issuer,
        &request.redirect_uri,
        request.state.as_deref(),
        error,
    ))
}

/// RFC 6749 §4.1.2.1 error response with RFC 9207 `iss`, built with the URL serializer.
fn error_response(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: AuthorizeError,
) -> String {
    let description = error.to_string();
    let mut pairs = vec![
        ("error", error.code().as_str()),
        ("error_description", description.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    append_query(redirect_uri, &pairs)
}

/// Appends parameters to a registered redirect URI, keeping its own query (RFC 6749 §3.1.2).
fn append_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.into()
        }
        // Registered URIs were parsed at registration; this cannot happen for them.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The pending flow, if it exists, is live, and was started by this browser.
async fn bound_flow(
    svc: &Latchkey,
    flow: &str,
    browser: Option<&str>,
) -> Result<(PendingRequest, Client), FlowError> {
    let browser = browser.ok_or(FlowError::UnknownFlow)?;
    let pending = svc
        .store
        .pending_request(&token_hash(flow), svc.now())
        .await
        .map_err(internal)?
        .ok_or(FlowError::UnknownFlow)?;
    if !ct_eq(&pending.browser_hash, &token_hash(browser)) {
        return Err(FlowError::UnknownFlow);
    }
    let client = svc
        .store
        .client(&pending.request.client_id)
        .await
        .map_err(internal)?
        .ok_or(FlowError::UnknownFlow)?;
    Ok((pending, client.client))
}

/// True when the browser's session belongs to the user who logged in for this flow.
async fn session_matches(
    svc: &Latchkey,
    pending: &PendingRequest,
    session: Option<&str>,
) -> Result<bool, FlowError> {
    let (Some(cookie), Some(user_id)) = (session, pending.user_id.as_deref()) else {
        return Ok(false);
    };
    Ok(session::live(svc, cookie, svc.now())
        .await?
        .is_some_and(|s| s.user_id == user_id))
}

fn check_csrf(browser: Option<&str>, flow: &str, presented: &str) -> Result<(), FlowError> {
    if session::csrf_matches(browser, flow, presented) {
        Ok(())
    } else {
        Err(FlowError::Forbidden)
    }
}

fn internal(e: impl Into<InternalError>) -> FlowError {
    FlowError::Internal(e.into())
}
