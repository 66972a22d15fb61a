//! The pages: minijinja templates compiled into the binary (`templates/`), each replaceable by a
//! file of the same name in `--templates DIR`. Every template is compiled, and every page
//! rendered with sample values under strict undefined-variable checks, when the server starts,
//! so a broken override stops the start with the file and line at fault instead of failing at
//! the first login. Escaping is automatic (`.html`).

use std::path::Path;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::brand::Branding;
use crate::crypto;
use crate::protocol::metadata::paths;
use crate::service::account::AccountView;
use crate::service::authorize::{ConsentPage, LoginPage};

/// The built-in templates, by the name an override file must have.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "signed_out.html",
        include_str!("../../templates/signed_out.html"),
    ),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "end_session.html",
        include_str!("../../templates/end_session.html"),
    ),
    (
        "demo_callback.html",
        include_str!("../../templates/demo_callback.html"),
    ),
    (
        "playground.html",
        include_str!("../../templates/playground.html"),
    ),
];

/// The stylesheet an override directory may replace.
const STYLESHEET_FILE: &str = "latchkey.css";
const STYLESHEET: &str = include_str!("../../assets/latchkey.css");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// A page: the template that shows it and the values it gets.
pub trait Page: Serialize {
    const TEMPLATE: &'static str;
}

/// The compiled templates, the stylesheet and the pages' CSP.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    /// Shared, not copied, by every answer.
    stylesheet: axum::body::Bytes,
    /// The stylesheet's URL, versioned by its content so it can be cached for a year.
    stylesheet_url: String,
    csp: HeaderValue,
}

impl Pages {
    /// The built-in pages with Latchkey's own branding.
    pub fn built_in() -> Self {
        Pages::new(Branding::default(), None).expect("the built-in templates are valid")
    }

    /// Compiles the templates, the overrides in `overrides` replacing built-in ones, and renders
    /// every page once with sample values. The error names the file and line at fault.
    pub fn new(brand: Branding, overrides: Option<&Path>) -> Result<Self, String> {
        let mut sources: Vec<(String, String)> = TEMPLATES
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
            .collect();
        let mut stylesheet = STYLESHEET.to_owned();
        if let Some(dir) = overrides {
            let found = read_overrides(dir)?;
            for (name, source) in found.templates {
                match sources.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = source,
                    None => sources.push((name, source)),
                }
            }
            if let Some(css) = found.stylesheet {
                stylesheet = css;
            }
        }
        stylesheet.push_str(&brand.css());
        let version: String = crypto::token_hash(&stylesheet)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let stylesheet_url = format!("{}?v={version}", paths::STYLESHEET);
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in sources {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| template_error(overrides, &e))?;
        }
        env.add_global("brand", Value::from_serialize(&brand));
        env.add_global("stylesheet_url", stylesheet_url.clone());
        let csp = csp(brand.logo_origin().as_deref());
        let pages = Pages {
            env,
            stylesheet: stylesheet.into(),
            stylesheet_url,
            csp,
        };
        for (template, sample) in samples() {
            pages
                .render_to_string(template, &sample)
                .map_err(|e| template_error(overrides, &e))?;
        }
        Ok(pages)
    }

    fn render_to_string(
        &self,
        template: &str,
        values: &impl Serialize,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(template)?.render(values)
    }

    /// Renders a page with a status. The pages were all rendered at start, so an error here is
    /// a bug: it is logged and answered with a fixed 500 text.
    pub fn render<P: Page>(&self, status: StatusCode, page: &P) -> Response {
        match self.render_to_string(P::TEMPLATE, page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(%error, template = P::TEMPLATE, "template rendering failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// `GET /assets/latchkey.css`: the pages link it with a content version, so it may be cached
    /// for a year.
    pub fn stylesheet(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            self.stylesheet.clone(),
        )
            .into_response()
    }

    pub fn stylesheet_url(&self) -> &str {
        &self.stylesheet_url
    }

    /// The pages' Content-Security-Policy: nothing but this server's stylesheet and images
    /// (and the brand logo's origin), no scripts, no framing.
    pub fn csp(&self) -> HeaderValue {
        self.csp.clone()
    }
}

/// `GET /favicon.ico` and `/assets/favicon.svg`: browsers ask for it on every page.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

fn csp(logo_origin: Option<&str>) -> HeaderValue {
    let img = match logo_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src {img}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    );
    // The origin comes from a parsed URL, so it is printable ASCII.
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
}

/// What an override directory holds.
struct Overrides {
    /// (file name, source) of each `.html` file.
    templates: Vec<(String, String)>,
    /// `latchkey.css`, when present.
    stylesheet: Option<String>,
}

/// The `.html` files and `latchkey.css` of an override directory.
fn read_overrides(dir: &Path) -> Result<Overrides, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "--templates {}: cannot read the directory: {e}",
            dir.display()
        )
    })?;
    let mut templates = Vec::new();
    let mut css = None;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("--templates {}: {e}", dir.display()))?
            .path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !path.is_file() || name.starts_with('.') {
            continue;
        }
        let read = || {
            std::fs::read_to_string(&path)
                .map_err(|e| format!("--templates: cannot read {}: {e}", path.display()))
        };
        if name == STYLESHEET_FILE {
            css = Some(read()?);
        } else if name.ends_with(".html") {
            if !TEMPLATES.iter().any(|(n, _)| *n == name) {
                tracing::warn!(
                    file = %path.display(),
                    "not one of Latchkey's templates: loaded only for {{% include %}} and {{% extends %}}"
                );
            }
            templates.push((name, read()?));
        } else {
            tracing::warn!(file = %path.display(), "ignored: --templates takes .html templates and latchkey.css");
        }
    }
    templates.sort();
    Ok(Overrides {
        templates,
        stylesheet: css,
    })
}

/// A template error as one message: where, what, and the lines around it.
fn template_error(overrides: Option<&Path>, error: &minijinja::Error) -> String {
    let mut message = match overrides {
        Some(dir) => format!("--templates {}: {error}", dir.display()),
        None => format!("built-in template: {error}"),
    };
    let context = error.display_debug_info().to_string();
    if !context.trim().is_empty() {
        message.push('\n');
        message.push_str(&context);
    }
    message
}

#[derive(Serialize)]
pub struct Login<'a> {
    pub flow: &'a str,
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub failed: bool,
    pub username: &'a str,
}

impl Page for Login<'_> {
    const TEMPLATE: &'static str = "login.html";
}

impl<'a> From<&'a LoginPage> for Login<'a> {
    fn from(page: &'a LoginPage) -> Self {
        Login {
            flow: &page.flow,
            csrf_token: &page.csrf_token,
            client_name: &page.client_name,
            failed: page.failed,
            username: &page.username,
        }
    }
}

#[derive(Serialize)]
pub struct Consent<'a> {
    pub flow: &'a str,
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub redirect_host: &'a str,
    pub scopes: Vec<ScopeLine<'a>>,
    pub extends_grant: bool,
}

/// A requested scope and what it allows, in plain words.
#[derive(Serialize)]
pub struct ScopeLine<'a> {
    pub name: &'a str,
    pub description: String,
}

impl Page for Consent<'_> {
    const TEMPLATE: &'static str = "consent.html";
}

impl<'a> From<&'a ConsentPage> for Consent<'a> {
    fn from(page: &'a ConsentPage) -> Self {
        Consent {
            flow: &page.flow,
            csrf_token: &page.csrf_token,
            client_name: &page.client_name,
            redirect_host: &page.redirect_host,
            scopes: page
                .scopes
                .iter()
                .map(|s| ScopeLine {
                    name: s.as_str(),
                    description: describe_scope(s),
                })
                .collect(),
            extends_grant: page.extends_grant,
        }
    }
}

/// Each scope in plain words for the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "sign you in and know who you are".to_owned(),
        "profile" => "see your name and username".to_owned(),
        "email" => "see your email address".to_owned(),
        "offline_access" => "keep access while you are away (refresh tokens)".to_owned(),
        other => format!("use the permission \u{201c}{other}\u{201d}"),
    }
}

/// An error page: what the user reads, and what the developer of the client must fix.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    /// For the developer: what to change, with the values received that explain it.
    pub explanation: Option<String>,
    pub facts: Vec<(String, String)>,
    pub request_id: String,
}

impl Page for ErrorPage {
    const TEMPLATE: &'static str = "error.html";
}

#[derive(Serialize)]
pub struct DemoCallback<'a> {
    pub title: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub hint: &'a str,
}

impl Page for DemoCallback<'_> {
    const TEMPLATE: &'static str = "demo_callback.html";
}

/// The account page: a sign-in form, or the grants of the signed-in user.
#[derive(Serialize)]
pub struct Account<'a> {
    pub signed_in: bool,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub failed: bool,
    pub grants: Vec<AccountGrant<'a>>,
}

#[derive(Serialize)]
pub struct AccountGrant<'a> {
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub scope: String,
}

impl Page for Account<'_> {
    const TEMPLATE: &'static str = "account.html";
}

impl<'a> From<&'a AccountView> for Account<'a> {
    fn from(view: &'a AccountView) -> Self {
        match view {
            AccountView::SignIn {
                csrf_token,
                failed,
                username,
            } => Account {
                signed_in: false,
                csrf_token,
                username,
                failed: *failed,
                grants: Vec::new(),
            },
            AccountView::Grants {
                csrf_token,
                username,
                grants,
            } => Account {
                signed_in: true,
                csrf_token,
                username,
                failed: false,
                grants: grants
                    .iter()
                    .map(|g| AccountGrant {
                        client_id: &g.client_id,
                        client_name: &g.client_name,
                        scope: g.scope.to_string(),
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Serialize)]
pub struct SignedOut {}

impl Page for SignedOut {
    const TEMPLATE: &'static str = "signed_out.html";
}

/// RP-Initiated Logout: the user confirms a logout the client could not prove.
#[derive(Serialize)]
pub struct EndSessionConfirm<'a> {
    pub csrf_token: &'a str,
    pub client_name: Option<&'a str>,
    /// The request's parameters, posted back unchanged.
    pub fields: Vec<(&'static str, &'a str)>,
}

impl Page for EndSessionConfirm<'_> {
    const TEMPLATE: &'static str = "end_session.html";
}

/// Values for rendering every page at start: each branch a template may take, so an override
/// that names an unknown variable fails then.
fn samples() -> Vec<(&'static str, Value)> {
    let mut samples = page_samples();
    samples.extend(super::playground::samples());
    samples
}

fn page_samples() -> Vec<(&'static str, Value)> {
    let login = |failed| Login {
        flow: "flow",
        csrf_token: "csrf",
        client_name: "Sample app",
        failed,
        username: if failed { "alice" } else { "" },
    };
    let consent = |extends_grant| Consent {
        flow: "flow",
        csrf_token: "csrf",
        client_name: "Sample app",
        redirect_host: "app.example",
        scopes: vec![ScopeLine {
            name: "openid",
            description: describe_scope("openid"),
        }],
        extends_grant,
    };
    let error = |explained: bool, facts: bool| ErrorPage {
        title: "Title".to_owned(),
        message: "Message.".to_owned(),
        explanation: explained.then(|| "Explanation.".to_owned()),
        facts: if facts {
            vec![(
                "redirect_uri".to_owned(),
                "https://app.example/cb".to_owned(),
            )]
        } else {
            Vec::new()
        },
        request_id: "00000000-0000-0000-0000-000000000000".to_owned(),
    };
    let account = |signed_in, failed, grants: bool| Account {
        signed_in,
        csrf_token: "csrf",
        username: "alice",
        failed,
        grants: if grants {
            vec![AccountGrant {
                client_id: "id",
                client_name: "Sample app",
                scope: "openid".to_owned(),
            }]
        } else {
            Vec::new()
        },
    };
    let end_session = |name| EndSessionConfirm {
        csrf_token: "csrf",
        client_name: name,
        fields: vec![("client_id", "id")],
    };
    vec![
        (Login::TEMPLATE, Value::from_serialize(login(false))),
        (Login::TEMPLATE, Value::from_serialize(login(true))),
        (Consent::TEMPLATE, Value::from_serialize(consent(false))),
        (Consent::TEMPLATE, Value::from_serialize(consent(true))),
        (
            ErrorPage::TEMPLATE,
            Value::from_serialize(error(false, false)),
        ),
        (
            ErrorPage::TEMPLATE,
            Value::from_serialize(error(true, false)),
        ),
        (
            ErrorPage::TEMPLATE,
            Value::from_serialize(error(true, true)),
        ),
        (
            Account::TEMPLATE,
            Value::from_serialize(account(false, false, false)),
        ),
        (
            Account::TEMPLATE,
            Value::from_serialize(account(false, true, false)),
        ),
        (
            Account::TEMPLATE,
            Value::from_serialize(account(true, false, false)),
        ),
        (
            Account::TEMPLATE,
            Value::from_serialize(account(true, false, true)),
        ),
        (SignedOut::TEMPLATE, Value::from_serialize(SignedOut {})),
        (
            EndSessionConfirm::TEMPLATE,
            Value::from_serialize(end_session(Some("Sample app"))),
        ),
        (
            EndSessionConfirm::TEMPLATE,
            Value::from_serialize(end_session(None)),
        ),
        (
            DemoCallback::TEMPLATE,
            Value::from_serialize(DemoCallback {
                title: "Title",
                fields: vec![("code", "sample")],
                hint: "Hint.",
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        dir
    }

    #[test]
    fn built_in_pages_render() {
        let pages = Pages::built_in();
        let html = pages
            .render_to_string(Login::TEMPLATE, &samples()[0].1)
            .unwrap();
        assert!(html.contains("lang=\"en\""));
        let version = pages.stylesheet_url().rsplit('=').next().unwrap();
        assert!(html.contains(version), "{html}");
    }

    #[test]
    fn an_override_replaces_its_page_and_sees_the_brand() {
        let dir = dir_with(&[(
            "login.html",
            "<p>{{ brand.name }} login for {{ client_name }}</p><form method=post><input name=username>{{ flow }}{{ csrf_token }}{{ failed }}{{ username }}</form>",
        )]);
        let brand = Branding::new(Some("Acme"), None, None).unwrap();
        let pages = Pages::new(brand, Some(dir.path())).unwrap();
        let html = pages
            .render_to_string(Login::TEMPLATE, &samples()[0].1)
            .unwrap();
        assert!(
            html.starts_with("<p>Acme login for Sample app</p>"),
            "{html}"
        );
    }

    #[test]
    fn a_syntax_error_names_file_and_line() {
        let dir = dir_with(&[(
            "consent.html",
            "line one\n{% if extends_grant %}\nno endif\n",
        )]);
        let error = Pages::new(Branding::default(), Some(dir.path())).unwrap_err();
        assert!(error.contains("consent.html"), "{error}");
        assert!(error.contains("--templates"), "{error}");
    }

    #[test]
    fn an_unknown_variable_fails_at_start_not_at_first_use() {
        let dir = dir_with(&[("error.html", "{{ title }} {{ no_such_variable }}")]);
        let error = Pages::new(Branding::default(), Some(dir.path())).unwrap_err();
        assert!(error.contains("error.html"), "{error}");
        assert!(error.contains("undefined"), "{error}");
    }

    #[test]
    fn a_stylesheet_override_changes_the_versioned_url() {
        let dir = dir_with(&[("latchkey.css", "body { color: red }")]);
        let pages = Pages::new(Branding::default(), Some(dir.path())).unwrap();
        assert_ne!(pages.stylesheet_url(), Pages::built_in().stylesheet_url());
        let css = std::str::from_utf8(&pages.stylesheet).unwrap();
        assert!(css.starts_with("body { color: red }"));
        assert!(css.contains("--accent"));
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let error = Pages::new(
            Branding::default(),
            Some(Path::new("/nonexistent/latchkey")),
        )
        .unwrap_err();
        assert!(error.contains("cannot read the directory"), "{error}");
    }

    #[test]
    fn the_logo_origin_is_allowed_by_the_csp() {
        let brand = Branding::new(None, Some("https://cdn.example/logo.svg"), None).unwrap();
        let pages = Pages::new(brand, None).unwrap();
        let csp = pages.csp();
        assert!(
            csp.to_str()
                .unwrap()
                .contains("img-src 'self' https://cdn.example;")
        );
    }
}
