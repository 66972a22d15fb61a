//! HTTP adapters: extract, call one service function, map the outcome. Routes, shared state,
//! middleware and graceful shutdown live here.

mod account;
mod authorize;
mod brand;
mod error;
mod extract;
mod metadata;
mod pages;
mod playground;
mod token;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::protocol::metadata::paths;
use crate::service::Latchkey;
pub use brand::Branding;
pub use extract::CookiePolicy;
pub use pages::Pages;
pub use playground::Playground;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub svc: Arc<Latchkey>,
    pub cookies: CookiePolicy,
    /// `scheme://host[:port]` of the issuer, for the same-origin check of form posts.
    pub issuer_origin: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client (checklist item 62).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The templates, stylesheet and branding of the pages.
    pub pages: Arc<Pages>,
    /// The flow playground's sample client, in demo mode only.
    pub playground: Option<Arc<Playground>>,
}

impl AppState {
    pub fn new(svc: Arc<Latchkey>) -> Self {
        let issuer_origin = url::Url::parse(&svc.settings.issuer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let cookies = CookiePolicy {
            secure: svc.settings.secure_cookies(),
        };
        AppState {
            svc,
            cookies,
            issuer_origin,
            trusted_proxies: Vec::new(),
            pages: Arc::new(Pages::built_in()),
            playground: None,
        }
    }
}

/// The client's address as [`record_client_ip`] determined it, for throttling.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

pub use crate::telemetry::current_request_id;

/// Makes the request id available to [`current_request_id`] while the request is answered.
async fn scope_request_id(request: Request<axum::body::Body>, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_owned();
    crate::telemetry::with_request_id(id, next.run(request)).await
}

/// Form bodies are small; anything larger is refused before parsing (checklist item 64).
const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route table. `demo` mounts the demo client's callback page.
pub fn router(state: AppState, demo: bool) -> Router {
    let pages = Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            paths::LOGIN,
            get(authorize::login_page).post(authorize::login_submit),
        )
        .route(paths::ACCOUNT, get(account::show))
        .route(paths::ACCOUNT_LOGIN, post(account::login))
        .route(paths::ACCOUNT_REVOKE, post(account::revoke))
        .route(paths::LOGOUT, post(account::logout))
        .route(
            paths::END_SESSION,
            get(account::end_session_get).post(account::end_session_post),
        )
        .route(
            paths::CONSENT,
            get(authorize::consent_page).post(authorize::consent_submit),
        )
        .layer(middleware::map_response_with_state(
            state.clone(),
            with_page_headers,
        ));
    // What browser-based public clients call: CORS for their registered origins only.
    let browser_api = Router::new()
        .route(paths::TOKEN, post(token::token))
        .route(paths::REVOKE, post(token::revoke))
        .route(
            paths::USERINFO,
            get(token::userinfo_get).post(token::userinfo_post),
        );
    let api = Router::new()
        .route(paths::INTROSPECT, post(token::introspect))
        .merge(browser_api.clone())
        .layer(middleware::map_response(
            |mut response: Response| async move {
                // RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma: no-cache" on every answer.
                let headers = response.headers_mut();
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                response
            },
        ));
    let discovery = Router::new()
        .route(paths::METADATA, get(metadata::metadata))
        .route(paths::OPENID_CONFIGURATION, get(metadata::metadata))
        .route(paths::JWKS, get(metadata::jwks));
    let api = api.merge(discovery).layer(cors(&state));
    let mut router = Router::new()
        .merge(pages)
        .merge(api)
        .route(
            paths::STYLESHEET,
            get(|State(state): State<AppState>| async move { state.pages.stylesheet() }),
        )
        .route(paths::FAVICON, get(pages::favicon))
        .route(paths::FAVICON_SVG, get(pages::favicon))
        .route(paths::HEALTH_LIVE, get(metadata::live))
        .route(paths::HEALTH_READY, get(metadata::ready));
    if demo {
        let demo_pages = Router::new()
            .route(paths::DEMO_CALLBACK, get(metadata::demo_callback))
            .route(paths::PLAYGROUND, get(playground::show))
            .route(paths::PLAYGROUND_START, post(playground::start))
            .route(paths::PLAYGROUND_CALLBACK, get(playground::callback))
            .route(paths::PLAYGROUND_EXCHANGE, post(playground::exchange))
            .route(paths::PLAYGROUND_REFRESH, post(playground::refresh))
            .route(paths::PLAYGROUND_USERINFO, post(playground::userinfo))
            .layer(middleware::map_response_with_state(
                state.clone(),
                with_page_headers,
            ));
        router = router.merge(demo_pages);
    }
    router
        .layer(middleware::map_response_with_state(
            state.clone(),
            render_error_pages,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            common_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_client_ip,
        ))
        .layer(middleware::from_fn(scope_request_id))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                // The path only: queries may hold values that belong to the user.
                let id = request
                    .extensions()
                    .get::<RequestId>()
                    .and_then(|id| id.header_value().to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    request_id = %id,
                    method = %request.method(),
                    path = %request.uri().path(),
                    client_ip = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(drop_unusable_request_id))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// CORS for browser-based public clients (checklist item 12): only origins of public clients'
/// registered redirect URIs are allowed, never `*`, never with credentials. The login, consent
/// and authorization endpoints get no CORS at all (RFC 9700 §2.6).
fn cors(state: &AppState) -> CorsLayer {
    let svc = state.svc.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, _| {
                let svc = svc.clone();
                async move {
                    let Ok(origin) = origin.to_str() else {
                        return false;
                    };
                    crate::service::admin::is_public_client_origin(svc.store.as_ref(), origin).await
                }
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// Records the client's address in the request span, so audit events carry it. The peer
/// address counts, unless the peer is a trusted proxy: then the last `X-Forwarded-For` entry,
/// the one that proxy added.
async fn record_client_ip(
    State(state): State<AppState>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let client = client_ip(&state.trusted_proxies, &request);
    if let Some(ip) = client {
        tracing::Span::current().record("client_ip", tracing::field::display(ip));
    }
    let mut request = request;
    request.extensions_mut().insert(ClientIp(client));
    next.run(request).await
}

fn client_ip(trusted_proxies: &[IpAddr], request: &Request<axum::body::Body>) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
    Some(forwarded.unwrap_or(peer))
}

/// Pages are not cached, not framed, and run no script (RFC 9700 §4.16 clickjacking; the CSP
/// also allows the brand logo's origin).
async fn with_page_headers(State(state): State<AppState>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, state.pages.csp());
    response
}

/// A proxy's `X-Request-Id` is kept, so logs correlate across hops, when it is a plain token of
/// at most 64 characters; anything else is dropped and a fresh id made. The id is written to
/// logs, pages and the flow trail, so its size and alphabet must be bounded.
async fn drop_unusable_request_id(
    mut request: Request<axum::body::Body>,
) -> Request<axum::body::Body> {
    let usable = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 64
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let headers = request.headers_mut();
    let all: Vec<&HeaderValue> = headers.get_all(&REQUEST_ID).iter().collect();
    if !(all.is_empty() || (all.len() == 1 && usable(all[0]))) {
        headers.remove(&REQUEST_ID);
    }
    request
}

/// Renders the error pages that [`error::HttpError`] answered with, using the configured
/// templates (a response cannot reach the state by itself). Runs inside the request-id scope.
async fn render_error_pages(State(state): State<AppState>, mut response: Response) -> Response {
    let Some(page) = response.extensions_mut().remove::<pages::ErrorPage>() else {
        return response;
    };
    let mut rendered = state.pages.render(response.status(), &page);
    for (name, value) in response.headers() {
        rendered.headers_mut().append(name.clone(), value.clone());
    }
    rendered = with_page_headers(State(state), rendered).await;
    rendered
}

/// Headers every response carries. Under an https issuer, HSTS for a year (ASVS 5.0 V3.4.1,
/// checklist item 61): TLS ends at the proxy, but the browser only ever sees the issuer.
async fn common_headers(
    State(state): State<AppState>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if state.cookies.secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// How long a client may take to send a request's headers, and to start the next request on
/// a kept-alive connection; slower connections are closed (slowloris, checklist item 65).
/// Bodies are bounded by the 30 s handler timeout and [`BODY_LIMIT`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then lets in-flight requests finish for up to `grace`.
/// Each connection gets the peer address as [`ConnectInfo`] and HTTP/1.1 with
/// [`HEADER_READ_TIMEOUT`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, grace, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header-read timeout.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
    header_read_timeout: Duration,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    // HTTP/1.1 only: TLS (and any HTTP/2) ends at the proxy. Sniffing for HTTP/2 would read the
    // first bytes with no timer, so a connection that sends nothing would be held forever.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers go out at once.
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |request: Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "in-flight requests did not finish in time"
        );
    }
    Ok(())
}
