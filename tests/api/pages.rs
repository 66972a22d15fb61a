//! The pages as a deployment sees them (issue 7): branding flags, template overrides that fail
//! at start and never at the first login, the versioned stylesheet, the favicon and the CSP.

use reqwest::StatusCode;

use crate::cli::{Db, Server, run_bounded, text};
use crate::helpers::*;

/// Starts `serve` with `extra` flags and attaches a test app to it.
pub(crate) async fn serve(db: &Db, extra: &[&str]) -> (Server, TestApp) {
    let mut cmd = db.command(&["serve", "--bind", "127.0.0.1:0"]);
    cmd.args(extra);
    let server = Server::spawn(cmd);
    let app = TestApp::attach(server.base.clone(), &db.url).await;
    (server, app)
}

/// `serve` with `extra` must exit unsuccessfully before listening; returns its stderr.
fn refused_start(db: &Db, extra: &[&str]) -> String {
    let mut cmd = db.command(&["serve", "--bind", "127.0.0.1:0"]);
    cmd.args(extra);
    let out = run_bounded(cmd, "");
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "serve {extra:?} must fail: {stderr}");
    assert!(
        !stderr.contains("latchkey is listening"),
        "it must fail before listening: {stderr}"
    );
    stderr
}

async fn login_page(app: &TestApp, client: &TestClient) -> Answer {
    let browser = Browser::new();
    let started = authorize_request(app, &browser, client, "openid", "s", &[]).await;
    browser.follow(app, &started).await
}

/// The `href` of the page's stylesheet link, unescaped.
fn stylesheet_href(page: &Answer) -> String {
    let tag = page
        .body
        .split("<link")
        .find(|t| t.contains("rel=\"stylesheet\""))
        .expect("a stylesheet link");
    let start = tag.find("href=\"").expect("href") + 6;
    let end = tag[start..].find('"').expect("end") + start;
    unescape_html(&tag[start..end])
}

#[tokio::test]
async fn brand_flags_name_colour_and_logo_every_page() {
    let db = Db::new();
    let (_server, app) = serve(
        &db,
        &[
            "--brand-name",
            "Acme ID",
            "--brand-color",
            "#ffcc00",
            "--brand-logo-url",
            "https://cdn.example/logo.svg",
        ],
    )
    .await;
    let client = app.client().await;
    let page = login_page(&app, &client).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<title>Sign in · Acme ID</title>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<span>Acme ID</span>"));
    assert!(
        page.body.contains("cdn.example&#x2f;logo.svg"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Latchkey</span>"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("img-src 'self' https://cdn.example;"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");

    // The stylesheet carries the colour, with black text on the yellow buttons (AA contrast).
    let css = reqwest::get(app.url(&stylesheet_href(&page)))
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    let css = css.text().await.unwrap();
    assert!(
        css.contains("--accent: #ffcc00; --on-accent: #000000;"),
        "{css}"
    );

    // Error pages carry the brand too.
    let browser = Browser::new();
    let error = browser.authorize(&app, &[("client_id", "nope")]).await;
    assert!(error.is_error_page());
    assert!(error.body.contains("<title>Error · Acme ID</title>"));
}

#[tokio::test]
async fn the_stylesheet_is_versioned_by_content_and_cached_for_a_year() {
    let db = Db::new();
    let (_server, plain) = serve(&db, &[]).await;
    let client = plain.client().await;
    let href = stylesheet_href(&login_page(&plain, &client).await);
    assert!(href.starts_with("/assets/latchkey.css?v="), "{href}");
    let css = reqwest::get(plain.url(&href)).await.unwrap();
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // Another colour is another stylesheet, hence another URL: no browser keeps a stale one.
    let db2 = Db::new();
    let (_server2, branded) = serve(&db2, &["--brand-color", "#0a7d32"]).await;
    let client2 = branded.client().await;
    let branded_href = stylesheet_href(&login_page(&branded, &client2).await);
    assert_ne!(href, branded_href);
}

#[tokio::test]
async fn favicon_is_served_so_browsers_get_no_404() {
    let db = Db::new();
    let (_server, app) = serve(&db, &[]).await;
    for path in ["/favicon.ico", "/assets/favicon.svg"] {
        let answer = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(answer.headers()["content-type"], "image/svg+xml", "{path}");
    }
}

#[tokio::test]
async fn a_template_override_replaces_its_page_and_the_flow_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let login = std::fs::read_to_string("templates/login.html")
        .unwrap()
        .replace(
            "<h1>Sign in</h1>",
            "<h1>Welcome to {{ brand.name }}</h1><p id=custom>custom</p>",
        );
    std::fs::write(dir.path().join("login.html"), login).unwrap();
    let db = Db::new();
    let dir_arg = dir.path().to_str().unwrap();
    let (_server, app) = serve(&db, &["--templates", dir_arg, "--brand-name", "Acme"]).await;
    app.user("alice").await;
    let client = app.client().await;
    let page = login_page(&app, &client).await;
    assert!(
        page.body
            .contains("<h1>Welcome to Acme</h1><p id=custom>custom</p>")
    );
    // The other pages are the built-in ones, and the whole flow completes.
    let flow = flow(&app, &client, "alice", "openid").await;
    let token = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.body);
}

#[test]
fn a_broken_override_stops_the_start_naming_file_and_line() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("consent.html"),
        "{% extends \"base.html\" %}\n{% block content %}\n{% if extends_grant %}\n{% endblock %}\n",
    )
    .unwrap();
    let stderr = refused_start(&db, &["--templates", dir.path().to_str().unwrap()]);
    assert!(
        stderr.contains("cannot load the page templates"),
        "{stderr}"
    );
    assert!(stderr.contains("consent.html"), "{stderr}");
    assert!(stderr.contains("(in consent.html:4)"), "{stderr}");
}

#[test]
fn an_override_naming_an_unknown_variable_stops_the_start() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("login.html"),
        "<form method=post>{{ flow }} {{ csrf_tokn }}</form>",
    )
    .unwrap();
    let stderr = refused_start(&db, &["--templates", dir.path().to_str().unwrap()]);
    assert!(stderr.contains("login.html"), "{stderr}");
    assert!(stderr.contains("undefined"), "{stderr}");
}

#[test]
fn bad_brand_flags_and_a_missing_template_directory_stop_the_start() {
    let db = Db::new();
    let stderr = refused_start(&db, &["--brand-color", "blue"]);
    assert!(stderr.contains("--brand-color"), "{stderr}");
    let stderr = refused_start(&db, &["--brand-logo-url", "http://cdn.example/logo.png"]);
    assert!(stderr.contains("--brand-logo-url"), "{stderr}");
    let stderr = refused_start(&db, &["--templates", "/nonexistent/latchkey-templates"]);
    assert!(stderr.contains("cannot read the directory"), "{stderr}");
}

#[tokio::test]
async fn every_page_sets_lang_viewport_labels_and_no_script() {
    let db = Db::new();
    let (_server, app) = serve(&db, &[]).await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = authorize_request(&app, &browser, &client, "openid profile", "s", &[]).await;
    let login = browser.follow(&app, &started).await;
    let consent_redirect = browser
        .submit(
            &app,
            &login,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    let consent = browser.follow(&app, &consent_redirect).await;
    let error = browser.authorize(&app, &[("client_id", "nope")]).await;
    let account = browser.get(&app.url("/account")).await;
    for (name, page) in [
        ("login", &login),
        ("consent", &consent),
        ("error", &error),
        ("account", &account),
    ] {
        assert!(
            page.body.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{name}"
        );
        assert!(page.body.contains("name=\"viewport\""), "{name}");
        assert!(!page.body.contains("<script"), "{name}");
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{name}");
    }
    for field in ["username", "password"] {
        assert!(login.body.contains(&format!("<label for=\"{field}\">")));
        assert!(login.body.contains(&format!("id=\"{field}\"")));
    }
    // The consent page names the client, the host it returns to and each scope in words.
    assert!(consent.body.contains("app.example"), "{}", consent.body);
    assert!(consent.body.contains("see your name and username"));
}

/// The text of the error page's developer section (between `<details` and `</details>`).
fn developer_section(page: &Answer) -> String {
    let start = page.body.find("<details").expect("a developer section");
    let end = page.body[start..].find("</details>").expect("its end") + start;
    unescape_html(&page.body[start..end])
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_explained_with_the_value_received_and_how_it_differs() {
    let app = spawn_app().await;
    let client = app.client().await;
    let browser = Browser::new();
    let sent = "https://app.example/cb/";
    let page = browser
        .authorize(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", sent),
                ("scope", "openid"),
            ],
        )
        .await;
    assert!(page.is_error_page());
    let section = developer_section(&page);
    assert!(
        section.contains("<dt>redirect_uri received</dt>"),
        "{section}"
    );
    assert!(section.contains(sent), "{section}");
    // How it differs, but not what is registered: the page is public.
    assert!(section.contains("only by a trailing slash"), "{section}");
    assert!(!section.contains("registered redirect_uri"), "{section}");
    assert!(section.contains("character for character"), "{section}");
    assert!(section.contains(&client.id), "{section}");
    // Nothing secret: not the client secret, nor its digest.
    assert!(!page.body.contains(client.secret.as_deref().unwrap()));
    // The request id of the page is the one in the header, for `latchkey explain`.
    let id = page.header("x-request-id").unwrap();
    assert!(
        page.body.contains(&format!("latchkey explain {id}")),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn explanations_escape_what_they_echo_and_cut_long_values() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let hostile = format!("<script>alert(1)</script>{}", "x".repeat(5000));
    let page = browser
        .authorize(&app, &[("response_type", "code"), ("client_id", &hostile)])
        .await;
    assert!(page.is_error_page());
    assert!(!page.body.contains("<script>"), "echoed input is escaped");
    assert!(page.body.contains("&lt;script&gt;"));
    assert!(
        page.body.len() < 8000,
        "a 5,000-character value is cut: {}",
        page.body.len()
    );
    assert!(developer_section(&page).contains("latchkey client list"));
}

#[tokio::test]
async fn a_missing_or_unknown_flow_and_a_forged_form_are_explained_too() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let page = browser.get(&app.url("/login?flow=nothing")).await;
    assert!(page.is_error_page());
    assert!(developer_section(&page).contains("expired"));
    let forged = browser
        .post_form(
            &app.url("/login"),
            &[
                ("flow".to_owned(), "x".to_owned()),
                ("csrf_token".to_owned(), "x".to_owned()),
            ],
        )
        .await;
    assert!(forged.status.is_client_error());
    assert!(forged.body.contains("<details"), "{}", forged.body);
}

#[tokio::test]
async fn a_proxys_request_id_is_kept_only_when_it_is_a_short_plain_token() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let with_id = |id: String| {
        http.get(app.url("/authorize?client_id=nope"))
            .header("x-request-id", id)
            .send()
    };
    let kept = with_id("edge-4f2a.17".to_owned()).await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "edge-4f2a.17");
    let body = kept.text().await.unwrap();
    assert!(
        body.contains("edge-4f2a.17"),
        "the page shows the proxy's id"
    );
    for unusable in ["x".repeat(65), "a b".to_owned(), "<script>".to_owned()] {
        let answer = with_id(unusable.clone()).await.unwrap();
        let id = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, unusable);
        assert_eq!(id.len(), 36, "a fresh UUID instead of {unusable:?}: {id}");
    }
}
