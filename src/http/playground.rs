//! `/playground` (demo mode only): a sample confidential client, built into the server, that
//! runs the Authorization Code flow live and shows each step next to a sequence diagram — the
//! authorization request it builds, the login and consent it leads to, the code it receives,
//! the token request it sends, the decoded access token, a refresh and the userinfo call.
//!
//! It is a real client: it talks to Latchkey over HTTP like any other, from the server side
//! (the requests go to the server's own listening address), so its secret and its live tokens
//! stay in this process and never reach the browser. The browser only ever sees what a user
//! of a real client would: the redirects, and the requests shown with secrets redacted.
//! Sessions live in memory, one per browser (a cookie), at most [`MAX_SESSIONS`], for an hour.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minijinja::Value;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::require_same_origin;
use super::pages::Page;
use crate::crypto;
use crate::protocol::metadata::paths;
use crate::protocol::params::Params;
use crate::protocol::pkce;
use crate::protocol::types::ClientSecret;
use crate::service::admin::{DEFAULT_SCOPES, DEMO_USERNAME, PLAYGROUND_CLIENT_ID};

const COOKIE: &str = "latchkey_playground";
const MAX_SESSIONS: usize = 1000;
const SESSION_TTL: Duration = Duration::from_secs(3600);

/// The playground's client and the browsers' sessions with it.
pub struct Playground {
    secret: ClientSecret,
    redirect_uri: String,
    issuer: String,
    /// Where the server-side requests go: the server's own listening address.
    local_base: String,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
    /// One step at a time: a double click must not send a code or refresh token twice (the
    /// second would be a replay, and revoke the grant).
    steps: tokio::sync::Mutex<()>,
}

/// One browser's run through the flow.
#[derive(Clone, Default)]
struct Session {
    created: Option<Instant>,
    csrf_token: String,
    state: String,
    verifier: String,
    nonce: String,
    authorization_url: Option<String>,
    callback: Option<Callback>,
    token: Option<Exchange>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    /// Whether the ID token of the code exchange carried this run's `nonce` (OIDC Core §3.1.3.7).
    nonce_matches: Option<bool>,
    refresh: Option<Exchange>,
    userinfo: Option<Exchange>,
}

/// What came back to the redirect URI.
#[derive(Clone, Serialize)]
struct Callback {
    params: Vec<(String, String)>,
    state_matches: bool,
    iss_matches: bool,
    code: Option<String>,
    error: Option<String>,
}

/// A request the playground sent from the server, as shown (secrets redacted), and the answer.
#[derive(Clone, Serialize)]
struct Exchange {
    request: String,
    status: u16,
    response: String,
}

impl Playground {
    pub fn new(
        secret: ClientSecret,
        redirect_uri: String,
        issuer: String,
        local_addr: std::net::SocketAddr,
    ) -> Self {
        let ip = if local_addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            local_addr.ip()
        };
        let local_base = format!(
            "http://{}",
            std::net::SocketAddr::new(ip, local_addr.port())
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Playground {
            secret,
            redirect_uri,
            issuer,
            local_base,
            http,
            sessions: Mutex::new(HashMap::new()),
            steps: tokio::sync::Mutex::new(()),
        }
    }

    fn session(&self, jar: &CookieJar) -> Option<Session> {
        let id = jar.get(COOKIE)?.value().to_owned();
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(&id)
            .filter(|s| s.created.is_some_and(|c| c.elapsed() < SESSION_TTL))
            .cloned()
    }

    fn save(&self, jar: &CookieJar, session: Session) {
        let Some(id) = jar.get(COOKIE).map(|c| c.value().to_owned()) else {
            return;
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        // A session evicted meanwhile stays gone.
        if let Some(slot) = sessions.get_mut(&id) {
            *slot = session;
        }
    }

    /// A new session with a fresh `state`, PKCE verifier and `nonce`, and the authorization
    /// request built from them (RFC 6749 §4.1.1, RFC 7636 §4.3).
    fn start(&self) -> (String, Session) {
        let id = crypto::random_token();
        let state = crypto::random_token()[..16].to_owned();
        let verifier = crypto::random_token();
        let nonce = crypto::random_token()[..16].to_owned();
        let mut url = url::Url::parse(&format!("{}{}", self.issuer, paths::AUTHORIZE))
            .expect("the issuer is a URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", PLAYGROUND_CLIENT_ID)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", DEFAULT_SCOPES)
            .append_pair("state", &state)
            .append_pair("code_challenge", &pkce::s256_challenge(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("nonce", &nonce);
        let session = Session {
            created: Some(Instant::now()),
            csrf_token: crypto::random_token(),
            state,
            verifier,
            nonce,
            authorization_url: Some(url.to_string()),
            ..Session::default()
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.created.is_some_and(|c| c.elapsed() < SESSION_TTL));
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// POSTs a form to the token endpoint with HTTP Basic client authentication (RFC 6749
    /// §2.3.1); `shown` is the body as displayed, secrets redacted.
    async fn token_request(
        &self,
        form: &[(&str, &str)],
        shown: &[(&str, String)],
    ) -> (Exchange, Option<serde_json::Value>) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = format!(
            "POST {} HTTP/1.1\nHost: {}\nAuthorization: Basic [{}:client_secret, base64 — the secret stays on the server]\nContent-Type: application/x-www-form-urlencoded\n\n{}",
            paths::TOKEN,
            host(&self.issuer),
            PLAYGROUND_CLIENT_ID,
            shown
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n&")
        );
        let sent = self
            .http
            .post(format!("{}{}", self.local_base, paths::TOKEN))
            .basic_auth(
                url_encode(PLAYGROUND_CLIENT_ID),
                Some(url_encode(self.secret.expose())),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        answer(request, sent).await
    }

    async fn userinfo_request(&self, access_token: &str) -> Exchange {
        let request = format!(
            "GET {} HTTP/1.1\nHost: {}\nAuthorization: Bearer {}",
            paths::USERINFO,
            host(&self.issuer),
            shorten_token(access_token)
        );
        let sent = self
            .http
            .get(format!("{}{}", self.local_base, paths::USERINFO))
            .bearer_auth(access_token)
            .send()
            .await;
        answer(request, sent).await.0
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
fn url_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn host(issuer: &str) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_default()
}

/// Reads the answer of a server-side request; the JSON body comes back as well, unredacted,
/// for the playground to keep (tokens stay on the server).
async fn answer(
    request: String,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> (Exchange, Option<serde_json::Value>) {
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            let shown = match &json {
                Some(value) => {
                    serde_json::to_string_pretty(&redact_tokens(value.clone())).unwrap_or_default()
                }
                None => text,
            };
            (
                Exchange {
                    request,
                    status,
                    response: shown,
                },
                json,
            )
        }
        Err(error) => (
            Exchange {
                request,
                status: 0,
                response: format!("request failed: {error}"),
            },
            None,
        ),
    }
}

/// Token values in a token response, as shown: the JWTs cut short, the refresh token by length.
fn redact_tokens(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(object) = value.as_object_mut() {
        for key in ["access_token", "id_token"] {
            if let Some(token) = object.get(key).and_then(|v| v.as_str()).map(shorten_token) {
                object.insert(key.to_owned(), token.into());
            }
        }
        if let Some(length) = object
            .get("refresh_token")
            .and_then(|v| v.as_str())
            .map(|t| t.len())
        {
            object.insert(
                "refresh_token".to_owned(),
                format!("[redacted: {length} characters, kept on the server]").into(),
            );
        }
    }
    value
}

/// A JWT as shown: its first characters (the header) and its length.
fn shorten_token(token: &str) -> String {
    let head: String = token.chars().take(24).collect();
    format!("{head}… [{} characters, kept on the server]", token.len())
}

/// A JWT's header and claims, pretty-printed (the signature was checked by the server that
/// answers userinfo; the playground only shows what is inside).
fn decode_jwt(token: &str) -> Option<(String, String)> {
    let mut parts = token.split('.');
    let part = |p: Option<&str>| -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(p?).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        serde_json::to_string_pretty(&value).ok()
    };
    Some((part(parts.next())?, part(parts.next())?))
}

/// The lanes and arrows of the sequence diagram (inline SVG in `playground.html`).
#[derive(Serialize)]
struct Arrow {
    number: &'static str,
    label: &'static str,
    x1: u32,
    x2: u32,
    y: u32,
    /// `done`, `current` or `todo`.
    status: &'static str,
}

#[derive(Serialize)]
struct Lane {
    name: &'static str,
    x: u32,
}

const LANES: [Lane; 4] = [
    Lane {
        name: "Browser",
        x: 60,
    },
    Lane {
        name: "Client",
        x: 250,
    },
    Lane {
        name: "Latchkey",
        x: 440,
    },
    Lane {
        name: "/userinfo",
        x: 630,
    },
];

/// The steps in flow order: number, label, from lane, to lane.
const STEPS: [(&str, &str, usize, usize); 8] = [
    ("1", "authorization request", 0, 2),
    ("2", "login", 2, 0),
    ("3", "consent", 2, 0),
    ("4", "code by redirect", 0, 1),
    ("5", "token request", 1, 2),
    ("6", "access token", 2, 1),
    ("6′", "refresh", 1, 2),
    ("7", "userinfo, bearer token", 1, 3),
];

/// The arrows, each done, current (the first not done, once the run has started) or to do.
fn diagram(started: bool, done: [bool; 8]) -> Vec<Arrow> {
    let current = done.iter().position(|d| !d).filter(|_| started);
    STEPS
        .iter()
        .enumerate()
        .map(|(i, (number, label, from, to))| Arrow {
            number,
            label,
            x1: LANES[*from].x,
            x2: LANES[*to].x,
            y: 70 + 40 * i as u32,
            status: if done[i] {
                "done"
            } else if current == Some(i) {
                "current"
            } else {
                "todo"
            },
        })
        .collect()
}

/// What `playground.html` gets.
#[derive(Serialize)]
pub struct PlaygroundPage {
    started: bool,
    csrf_token: String,
    username: &'static str,
    client_id: &'static str,
    redirect_uri: String,
    authorization_url: Option<String>,
    authorization_params: Vec<(String, String)>,
    callback: Option<Callback>,
    token: Option<Exchange>,
    jwt_header: Option<String>,
    jwt_claims: Option<String>,
    nonce_matches: Option<bool>,
    refresh: Option<Exchange>,
    userinfo: Option<Exchange>,
    lanes: &'static [Lane],
    arrows: Vec<Arrow>,
    current: Option<String>,
}

impl Page for PlaygroundPage {
    const TEMPLATE: &'static str = "playground.html";
}

impl PlaygroundPage {
    fn new(playground: &Playground, session: Option<&Session>) -> Self {
        let empty = Session::default();
        let s = session.unwrap_or(&empty);
        let called_back = s.callback.is_some();
        let got_code = s.callback.as_ref().is_some_and(|c| c.code.is_some());
        let exchanged = s.access_token.is_some() && s.token.is_some();
        let done = [
            called_back,
            got_code,
            got_code,
            called_back,
            exchanged,
            exchanged,
            s.refresh.is_some(),
            s.userinfo.is_some(),
        ];
        let arrows = diagram(session.is_some(), done);
        let current = arrows
            .iter()
            .find(|a| a.status == "current")
            .map(|a| format!("step {}: {}", a.number, a.label));
        let authorization_params = s
            .authorization_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| {
                u.query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let (jwt_header, jwt_claims) = match s.access_token.as_deref().and_then(decode_jwt) {
            Some((h, c)) => (Some(h), Some(c)),
            None => (None, None),
        };
        PlaygroundPage {
            started: session.is_some(),
            csrf_token: s.csrf_token.clone(),
            username: DEMO_USERNAME,
            client_id: PLAYGROUND_CLIENT_ID,
            redirect_uri: playground.redirect_uri.clone(),
            authorization_url: s.authorization_url.clone(),
            authorization_params,
            callback: s.callback.clone(),
            token: s.token.clone(),
            jwt_header,
            jwt_claims,
            nonce_matches: s.nonce_matches,
            refresh: s.refresh.clone(),
            userinfo: s.userinfo.clone(),
            lanes: &LANES,
            arrows,
            current,
        }
    }
}

/// Sample values for the start-up check of the template, one per state the page can be in:
/// not started, started, back without a code (state and iss wrong), and every panel filled.
pub fn samples() -> Vec<(&'static str, Value)> {
    let page = |stage: u8| {
        let full = stage == 3;
        let exchange = full.then(|| Exchange {
            request: "POST /token".to_owned(),
            status: 200,
            response: "{}".to_owned(),
        });
        PlaygroundPage {
            started: stage > 0,
            csrf_token: "csrf".to_owned(),
            username: DEMO_USERNAME,
            client_id: PLAYGROUND_CLIENT_ID,
            redirect_uri: "https://issuer.example/playground/callback".to_owned(),
            authorization_url: (stage > 0)
                .then(|| "https://issuer.example/authorize?x=y".to_owned()),
            authorization_params: vec![("x".to_owned(), "y".to_owned())],
            callback: (stage > 1).then(|| Callback {
                params: vec![("error".to_owned(), "access_denied".to_owned())],
                state_matches: full,
                iss_matches: full,
                code: full.then(|| "c".to_owned()),
                error: (!full).then(|| "access_denied".to_owned()),
            }),
            token: exchange.clone(),
            jwt_header: full.then(|| "{}".to_owned()),
            jwt_claims: full.then(|| "{}".to_owned()),
            nonce_matches: full.then_some(stage == 3),
            refresh: exchange.clone(),
            userinfo: exchange,
            lanes: &LANES,
            arrows: diagram(
                stage > 0,
                [full, full, full, full, false, false, false, false],
            ),
            current: (stage > 0 && !full).then(|| "step 1".to_owned()),
        }
    };
    (0..=3)
        .map(|stage| (PlaygroundPage::TEMPLATE, Value::from_serialize(page(stage))))
        .collect()
}

/// The routes are mounted with the playground only; without it they do not exist.
fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// `GET /playground`.
pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Response {
    let Some(playground) = state.playground.as_deref() else {
        return not_found();
    };
    let session = playground.session(&jar);
    state.pages.render(
        StatusCode::OK,
        &PlaygroundPage::new(playground, session.as_ref()),
    )
}

/// `POST /playground/start`: a new run, and its authorization request.
pub async fn start(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar) -> Response {
    let Some(playground) = state.playground.as_deref() else {
        return not_found();
    };
    if let Err(refused) = require_same_origin(&state, &headers) {
        return refused.into_response();
    }
    let (id, _) = playground.start();
    let cookie = Cookie::build((COOKIE, id))
        .path(paths::PLAYGROUND)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookies.secure)
        .build();
    (jar.add(cookie), Redirect::to(paths::PLAYGROUND)).into_response()
}

/// `GET /playground/callback`: the redirect URI. Checks `state` and `iss` (RFC 9207) as a
/// client must, and keeps the code on the server.
pub async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(playground) = state.playground.as_deref() else {
        return not_found();
    };
    let Some(mut session) = playground.session(&jar) else {
        return Redirect::to(paths::PLAYGROUND).into_response();
    };
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let shown: Vec<(String, String)> = ["code", "state", "iss", "error", "error_description"]
        .iter()
        .filter_map(|k| params.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
        .collect();
    session.callback = Some(Callback {
        params: shown,
        state_matches: params.get("state") == Some(session.state.as_str()),
        iss_matches: params.get("iss") == Some(playground.issuer.as_str()),
        code: params.get("code").map(str::to_owned),
        error: params.get("error").map(str::to_owned),
    });
    playground.save(&jar, session);
    Redirect::to(&format!("{}#code", paths::PLAYGROUND)).into_response()
}

#[derive(Deserialize)]
pub struct StepForm {
    csrf_token: String,
}

/// The session of a form post, when its CSRF token is the session's.
fn posted_session(playground: &Playground, jar: &CookieJar, form: &StepForm) -> Option<Session> {
    playground
        .session(jar)
        .filter(|s| crypto::ct_eq(s.csrf_token.as_bytes(), form.csrf_token.as_bytes()))
}

/// The steps a form on the page posts.
#[derive(Clone, Copy)]
enum Step {
    Exchange,
    Refresh,
    Userinfo,
}

/// `POST /playground/exchange`: the token request, sent from the server.
pub async fn exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<StepForm>,
) -> Response {
    run_step(&state, &headers, &jar, &form, Step::Exchange).await
}

/// `POST /playground/refresh`: the refresh_token grant (RFC 6749 §6), from the server.
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<StepForm>,
) -> Response {
    run_step(&state, &headers, &jar, &form, Step::Refresh).await
}

/// `POST /playground/userinfo`: the protected resource, with the access token as bearer.
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<StepForm>,
) -> Response {
    run_step(&state, &headers, &jar, &form, Step::Userinfo).await
}

/// Runs a step for the browser's session when the form carries its CSRF token and the step's
/// input exists (a code, a refresh token, an access token); back to the page either way.
async fn run_step(
    state: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    form: &StepForm,
    step: Step,
) -> Response {
    let Some(playground) = state.playground.as_deref() else {
        return not_found();
    };
    if let Err(refused) = require_same_origin(state, headers) {
        return refused.into_response();
    }
    let _one_at_a_time = playground.steps.lock().await;
    let Some(mut session) = posted_session(playground, jar, form) else {
        return Redirect::to(paths::PLAYGROUND).into_response();
    };
    let anchor = match step {
        Step::Exchange => playground
            .exchange_code(&mut session)
            .await
            .then_some("token"),
        Step::Refresh => playground
            .refresh(&mut session)
            .await
            .then_some("refresh-step"),
        Step::Userinfo => playground
            .userinfo(&mut session)
            .await
            .then_some("userinfo-step"),
    };
    let Some(anchor) = anchor else {
        return Redirect::to(paths::PLAYGROUND).into_response();
    };
    playground.save(jar, session);
    Redirect::to(&format!("{}#{anchor}", paths::PLAYGROUND)).into_response()
}

impl Playground {
    /// Trades the session's code (RFC 6749 §4.1.3) and checks the ID token's `nonce`. Only
    /// once, and only for a response whose `state` and `iss` matched: a client must refuse
    /// any other (RFC 6749 §10.12, RFC 9207 §2.4).
    async fn exchange_code(&self, session: &mut Session) -> bool {
        let Some(code) = session
            .callback
            .as_ref()
            .filter(|c| c.state_matches && c.iss_matches && session.token.is_none())
            .and_then(|c| c.code.clone())
        else {
            return false;
        };
        let (redirect_uri, verifier) = (self.redirect_uri.clone(), session.verifier.clone());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let shown: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let (exchange, json) = self.token_request(&form, &shown).await;
        keep_tokens(session, json.as_ref());
        session.nonce_matches = json
            .as_ref()
            .and_then(|j| j.get("id_token")?.as_str().and_then(decode_jwt))
            .map(|(_, claims)| {
                let claims: serde_json::Value = serde_json::from_str(&claims).unwrap_or_default();
                claims.get("nonce").and_then(|n| n.as_str()) == Some(session.nonce.as_str())
            });
        session.token = Some(exchange);
        true
    }

    /// The refresh_token grant with the session's refresh token.
    async fn refresh(&self, session: &mut Session) -> bool {
        let Some(refresh_token) = session.refresh_token.clone() else {
            return false;
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        let redacted = format!(
            "[redacted: {} characters, kept on the server]",
            refresh_token.len()
        );
        let shown = [
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", redacted),
        ];
        let (exchange, json) = self.token_request(&form, &shown).await;
        keep_tokens(session, json.as_ref());
        session.refresh = Some(exchange);
        true
    }

    /// Userinfo with the session's access token.
    async fn userinfo(&self, session: &mut Session) -> bool {
        let Some(access_token) = session.access_token.clone() else {
            return false;
        };
        session.userinfo = Some(self.userinfo_request(&access_token).await);
        true
    }
}

/// Keeps the tokens of a successful token response, on the server.
fn keep_tokens(session: &mut Session, json: Option<&serde_json::Value>) {
    let Some(json) = json else { return };
    if let Some(token) = json.get("access_token").and_then(|v| v.as_str()) {
        session.access_token = Some(token.to_owned());
    }
    if let Some(token) = json.get("refresh_token").and_then(|v| v.as_str()) {
        session.refresh_token = Some(token.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diagram_marks_the_first_step_not_done_as_current() {
        let arrows = diagram(true, [true, true, true, true, false, false, false, false]);
        let status: Vec<&str> = arrows.iter().map(|a| a.status).collect();
        assert_eq!(
            status,
            [
                "done", "done", "done", "done", "current", "todo", "todo", "todo"
            ]
        );
        assert!(diagram(true, [true; 8]).iter().all(|a| a.status == "done"));
        assert!(
            diagram(false, [false; 8])
                .iter()
                .all(|a| a.status == "todo")
        );
    }

    #[test]
    fn token_responses_are_shown_without_live_secrets() {
        let response = serde_json::json!({
            "access_token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXZhbHVlLXNlY3JldA",
            "refresh_token": "the-refresh-token-value",
            "token_type": "Bearer",
        });
        let shown = redact_tokens(response).to_string();
        assert!(!shown.contains("the-refresh-token-value"));
        assert!(
            !shown.contains("c2lnbmF0dXJlLXZhbHVlLXNlY3JldA"),
            "no signature: {shown}"
        );
        assert!(shown.contains("Bearer"));
    }

    #[test]
    fn jwts_decode_to_header_and_claims() {
        let (header, claims) =
            decode_jwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.sig").expect("decodes");
        assert!(header.contains("\"alg\": \"ES256\""));
        assert!(claims.contains("\"sub\": \"u\""));
        assert!(decode_jwt("not a jwt").is_none());
    }
}
