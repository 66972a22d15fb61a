//! Test harness: boots the real server on 127.0.0.1:0 with a fresh SQLite database and a
//! manual clock, and drives it over HTTP like a browser (cookie jar, redirects off) and like a
//! client (token requests).

use std::sync::Arc;

use latchkey::clock::ManualClock;
use latchkey::http::{AppState, router};
use latchkey::protocol::pkce;
use latchkey::protocol::types::Password;
use latchkey::service::admin::{self, NewClient, NewUser};
use latchkey::service::{Latchkey, Settings};
use latchkey::store::{self, Store};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";
pub const CB: &str = "https://app.example/cb";

/// A running server and handles on its insides.
pub struct TestApp {
    /// The service behind the server (`None` when attached to another process).
    pub svc: Option<Arc<Latchkey>>,
    /// The issuer, which is also the base URL: `http://127.0.0.1:PORT`.
    pub base: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    /// The SQLite file, for grey-box checks of what is stored (`None` on PostgreSQL or when
    /// attached).
    pub db_path: Option<std::path::PathBuf>,
    /// Where the server's data lives.
    pub database_url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The storage backend the suite runs on: SQLite unless `LATCHKEY_TEST_BACKEND=postgres`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("LATCHKEY_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

/// The PostgreSQL server tests use: `LATCHKEY_TEST_POSTGRES_URL`, by default the local one.
pub fn postgres_base_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/latchkey_test".to_owned())
}

/// A new, empty schema on the test PostgreSQL server, as a URL whose connections use it.
/// Fails the test, never skips it, when PostgreSQL cannot be reached.
pub async fn fresh_postgres_schema() -> String {
    use sqlx::Connection;
    let base = postgres_base_url();
    let schema = format!("lk_{}", latchkey::crypto::random_uuid().replace('-', ""));
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

/// A registered client as the tests use it.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|s| s).await
}

/// Boots a server; `adjust` may change the settings (issuer excepted unless it sets one).
pub async fn spawn_app_with(adjust: impl FnOnce(Settings) -> Settings) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("latchkey.db");
    let database_url = match backend() {
        Backend::Sqlite => format!("sqlite://{}", db_path.display()),
        Backend::Postgres => fresh_postgres_schema().await,
    };
    let store = store::connect(&database_url).await.expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let clock = Arc::new(ManualClock::new());
    let settings = adjust(Settings::new(base.clone()));
    let svc = Latchkey::new(store.clone(), clock.clone(), settings)
        .await
        .expect("service");
    let svc = Arc::new(svc);
    let app = router(AppState::new(svc.clone()), false);
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestApp {
        svc: Some(svc),
        base,
        store,
        clock,
        db_path: (backend() == Backend::Sqlite).then_some(db_path),
        database_url,
        _dir: Some(dir),
    }
}

impl TestApp {
    /// Handles on a server running in another process over the database at `database_url`, so
    /// fixtures can be created directly in it.
    pub async fn attach(base: String, database_url: &str) -> TestApp {
        let store = store::connect(database_url).await.expect("store");
        TestApp {
            svc: None,
            base,
            store,
            clock: Arc::new(ManualClock::new()),
            db_path: None,
            database_url: database_url.to_owned(),
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A confidential client with redirect URI `CB` and the default scopes.
    pub async fn client(&self) -> TestClient {
        self.client_with(vec![CB.to_owned()], false, None).await
    }

    pub async fn public_client(&self, redirect_uri: &str) -> TestClient {
        self.client_with(vec![redirect_uri.to_owned()], true, None)
            .await
    }

    pub async fn client_with(
        &self,
        redirect_uris: Vec<String>,
        public: bool,
        scope: Option<&str>,
    ) -> TestClient {
        self.register(NewClient {
            redirect_uris,
            public,
            scope: scope.map(str::to_owned),
            ..NewClient::new("Test App", CB)
        })
        .await
    }

    pub async fn register(&self, new: NewClient) -> TestClient {
        let redirect_uri = new.redirect_uris[0].clone();
        let created = admin::create_client(self.store.as_ref(), new, 0)
            .await
            .expect("client");
        TestClient {
            id: created.client.id,
            secret: created.secret.map(|s| s.expose().to_owned()),
            redirect_uri,
        }
    }

    /// Creates a user with password [`PASSWORD`]; returns the `sub`.
    pub async fn user(&self, username: &str) -> String {
        let new = NewUser {
            username: username.to_owned(),
            email: Some(format!("{username}@example.com")),
            name: Some(format!("{username} Example")),
            password: Password::new(PASSWORD),
        };
        admin::create_user(self.store.as_ref(), new, 0)
            .await
            .expect("user")
            .id
    }

    pub async fn metadata(&self) -> Value {
        reqwest::get(self.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A browser: cookie jar, no automatic redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// Query parameters of the `Location` header.
    pub fn redirect_params(&self) -> std::collections::HashMap<String, String> {
        let location = self.location().expect("a Location header");
        let url = url::Url::parse(location).expect("absolute Location");
        url.query_pairs().into_owned().collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("JSON body expected, got {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The hidden inputs of the page's form.
    pub fn hidden_inputs(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for chunk in self.body.split("<input").skip(1) {
            let tag = chunk.split('>').next().unwrap_or_default();
            if !tag.contains("type=\"hidden\"") {
                continue;
            }
            let attr = |name: &str| {
                let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
                let end = tag[start..].find('"')? + start;
                Some(unescape_html(&tag[start..end]))
            };
            if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
                found.push((name, value));
            }
        }
        found
    }

    /// True for the HTML error page: 4xx, no redirect of any kind.
    pub fn is_error_page(&self) -> bool {
        self.status.is_client_error()
            && self.location().is_none()
            && self
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/html"))
    }
}

/// The claims of a JWT, unverified (tests check the signature where it matters).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// An attribute value as a browser reads it: the templates escape `&<>"'` and `/`.
pub fn unescape_html(raw: &str) -> String {
    raw.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser { http, jar }
    }

    /// The `Cookie` header this browser sends to the server now.
    pub fn cookie_header(&self, app: &TestApp) -> String {
        use reqwest::cookie::CookieStore;
        let url = url::Url::parse(&app.base).expect("base URL");
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    pub async fn get(&self, url: &str) -> Answer {
        answer(self.http.get(url).send().await.expect("GET")).await
    }

    pub async fn post_form(&self, url: &str, form: &[(String, String)]) -> Answer {
        answer(self.http.post(url).form(form).send().await.expect("POST")).await
    }

    /// Follows a relative redirect of the AS.
    pub async fn follow(&self, app: &TestApp, answer: &Answer) -> Answer {
        let location = answer.location().expect("a redirect");
        assert!(
            location.starts_with('/'),
            "expected a redirect within the AS, got {location}"
        );
        self.get(&app.url(location)).await
    }

    /// Starts an authorization request with the given query pairs.
    pub async fn authorize(&self, app: &TestApp, query: &[(&str, &str)]) -> Answer {
        let url = url::Url::parse_with_params(&app.url("/authorize"), query).expect("url");
        self.get(url.as_str()).await
    }

    /// Submits the page's form (its hidden inputs plus `extra`) to `path`.
    pub async fn submit(
        &self,
        app: &TestApp,
        page: &Answer,
        path: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut form = page.hidden_inputs();
        form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.post_form(&app.url(path), &form).await
    }

    /// Logs in on the login page the authorization request led to; returns the answer.
    pub async fn login(
        &self,
        app: &TestApp,
        started: &Answer,
        username: &str,
        password: &str,
    ) -> Answer {
        let page = self.follow(app, started).await;
        assert_eq!(page.status, StatusCode::OK, "login page: {}", page.body);
        self.submit(
            app,
            &page,
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// From a redirect to the consent page: shows it and answers `decision`.
    pub async fn consent(&self, app: &TestApp, to_consent: &Answer, decision: &str) -> Answer {
        let page = self.follow(app, to_consent).await;
        assert_eq!(page.status, StatusCode::OK, "consent page: {}", page.body);
        self.submit(app, &page, "/consent", &[("decision", decision)])
            .await
    }
}

/// Starts an authorization request for `client` with a fresh PKCE challenge, `state` and any
/// `extra` parameters; returns the first answer.
pub async fn authorize_request(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
    state: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let (_, challenge) = pkce_pair();
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", scope),
        ("state", state),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    browser.authorize(app, &query).await
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce_pair() -> (String, String) {
    let verifier = latchkey::crypto::random_token() + "-pkce";
    let challenge = pkce::s256_challenge(&verifier);
    (verifier, challenge)
}

/// What a completed front-channel flow yields.
pub struct Flow {
    pub code: String,
    pub verifier: String,
    pub browser: Browser,
}

/// Authorize → login → consent (allow) for `client` with `scope`, as `username`.
pub async fn flow(app: &TestApp, client: &TestClient, username: &str, scope: &str) -> Flow {
    let browser = Browser::new();
    let code = browser_flow(app, &browser, client, username, scope).await;
    Flow {
        code: code.0,
        verifier: code.1,
        browser,
    }
}

/// The same flow in an existing browser; returns (code, verifier).
pub async fn browser_flow(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    username: &str,
    scope: &str,
) -> (String, String) {
    browser_flow_with_issuer(app, browser, client, username, scope, &app.base).await
}

/// [`browser_flow`] against a node whose issuer is not its own address (a load-balanced
/// deployment shares one issuer): the redirect's `iss` must be `issuer`.
pub async fn browser_flow_with_issuer(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    username: &str,
    scope: &str,
    issuer: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let started = browser
        .authorize(
            app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", &client.redirect_uri),
                ("scope", scope),
                ("state", "xyz"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(
        started.status,
        StatusCode::SEE_OTHER,
        "authorize: {}",
        started.body
    );
    let mut answer = started;
    if answer.location().is_some_and(|l| l.starts_with("/login")) {
        answer = browser.login(app, &answer, username, PASSWORD).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "login: {}",
            answer.body
        );
    }
    if answer.location().is_some_and(|l| l.starts_with("/consent")) {
        answer = browser.consent(app, &answer, "allow").await;
    }
    let params = answer.redirect_params();
    assert_eq!(params.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(params.get("iss").map(String::as_str), Some(issuer));
    (
        params
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {params:?}")),
        verifier,
    )
}

/// A token request with Basic credentials (when the client has a secret) or `client_id`.
pub async fn token(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> Answer {
    let http = reqwest::Client::new();
    let mut request = http.post(app.url("/token"));
    let mut body: Vec<(&str, &str)> = form.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => body.push(("client_id", &client.id)),
    }
    answer(request.form(&body).send().await.expect("token request")).await
}

/// Exchanges a flow's code.
pub async fn exchange(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Answer {
    token(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn refresh(app: &TestApp, client: &TestClient, refresh_token: &str) -> Answer {
    token(
        app,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

pub async fn userinfo(app: &TestApp, access_token: &str) -> Answer {
    let response = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// A full flow and exchange: returns the token response JSON.
pub async fn tokens(app: &TestApp, client: &TestClient, username: &str, scope: &str) -> Value {
    let flow = flow(app, client, username, scope).await;
    let answer = exchange(app, client, &flow.code, &flow.verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "exchange: {}", answer.body);
    answer.json()
}

/// A POST to `path` with the client's Basic credentials (none for a public client).
pub async fn client_post(
    app: &TestApp,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new().post(app.url(path));
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.id, Some(secret));
    }
    answer(request.form(form).send().await.expect("POST")).await
}
