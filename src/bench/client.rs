//! The OAuth client side of `latchkey bench`: discovery, a browser that walks the login and
//! consent forms of CONTRACT §4 (any server with that shape, not only Latchkey), and the token,
//! introspection and userinfo calls.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use url::Url;

use crate::crypto;
use crate::protocol::pkce;

/// The endpoints a run needs, from the RFC 8414 or OIDC discovery document.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub introspection: Option<String>,
    pub userinfo: Option<String>,
}

/// Reads the discovery document of the server at `base`.
pub async fn discover(http: &reqwest::Client, base: &str) -> anyhow::Result<Endpoints> {
    let base = base.trim_end_matches('/');
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let Ok(response) = http.get(format!("{base}{path}")).send().await else {
            continue;
        };
        if !response.status().is_success() {
            continue;
        }
        let doc: Value = response
            .json()
            .await
            .context("discovery document is not JSON")?;
        let field = |name: &str| doc[name].as_str().map(str::to_owned);
        return Ok(Endpoints {
            authorization: field("authorization_endpoint").context("no authorization_endpoint")?,
            token: field("token_endpoint").context("no token_endpoint")?,
            introspection: field("introspection_endpoint"),
            userinfo: field("userinfo_endpoint"),
        });
    }
    bail!("no discovery document at {base}")
}

/// Who the benchmark acts as.
#[derive(Clone, Debug)]
pub struct Identity {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub username: String,
    pub password: String,
    pub scope: String,
}

/// An HTTP client for back-channel calls: keep-alive, no redirects.
pub fn api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .expect("a plain HTTP client")
}

/// A browser: its own cookie jar, redirects followed by hand.
pub struct Browser {
    http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client");
        Browser { http }
    }

    /// Runs authorize → (login) → (consent) until the server redirects to the client; returns
    /// the code and its PKCE verifier.
    pub async fn code(
        &self,
        endpoints: &Endpoints,
        id: &Identity,
    ) -> anyhow::Result<(String, String)> {
        let verifier = crypto::random_token();
        let mut url = Url::parse(&endpoints.authorization)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &id.client_id)
            .append_pair("redirect_uri", &id.redirect_uri)
            .append_pair("scope", &id.scope)
            .append_pair("state", &crypto::random_token()[..8])
            .append_pair("code_challenge", &pkce::s256_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let mut response = self.http.get(url.clone()).send().await?;
        let mut current = url;
        for _ in 0..12 {
            if let Some(location) = response.headers().get(reqwest::header::LOCATION) {
                let next = current.join(location.to_str()?)?;
                if next.as_str().starts_with(&id.redirect_uri) {
                    let code = next
                        .query_pairs()
                        .find(|(k, _)| k == "code")
                        .map(|(_, v)| v.into_owned());
                    let error = next
                        .query_pairs()
                        .find(|(k, _)| k == "error")
                        .map(|(_, v)| v.into_owned());
                    return code
                        .map(|c| (c, verifier))
                        .ok_or_else(|| anyhow!("authorization failed: {error:?}"));
                }
                response = self.http.get(next.clone()).send().await?;
                current = next;
                continue;
            }
            let status = response.status();
            let page = response.text().await?;
            if !status.is_success() {
                bail!("the authorization flow stopped at {current} with status {status}");
            }
            let form =
                Form::parse(&page).ok_or_else(|| anyhow!("no form on the page at {current}"))?;
            let mut fields = form.hidden;
            if form.has_password {
                fields.push(("username".into(), id.username.clone()));
                fields.push(("password".into(), id.password.clone()));
            } else {
                fields.push(("decision".into(), "allow".into()));
            }
            let target = current.join(form.action.as_deref().unwrap_or(current.as_str()))?;
            response = self.http.post(target.clone()).form(&fields).send().await?;
            current = target;
        }
        bail!("too many steps in the authorization flow")
    }
}

/// The first form of a page: its action, hidden inputs, and whether it asks for a password.
struct Form {
    action: Option<String>,
    hidden: Vec<(String, String)>,
    has_password: bool,
}

impl Form {
    fn parse(page: &str) -> Option<Form> {
        let start = page.find("<form")?;
        let end = page[start..]
            .find("</form>")
            .map_or(page.len(), |e| start + e);
        let form = &page[start..end];
        let open_tag = &form[..form.find('>')?];
        let mut hidden = Vec::new();
        let mut has_password = false;
        for input in form.split("<input").skip(1) {
            let tag = input.split('>').next().unwrap_or_default();
            match attribute(tag, "type").as_deref() {
                Some("hidden") => {
                    if let (Some(name), Some(value)) =
                        (attribute(tag, "name"), attribute(tag, "value"))
                    {
                        hidden.push((name, value));
                    }
                }
                Some("password") => has_password = true,
                _ => {}
            }
        }
        Some(Form {
            action: attribute(open_tag, "action"),
            hidden,
            has_password,
        })
    }
}

/// The value of `name="…"` in a tag, with HTML entities for `&`, quotes and `<` `>` undone.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    let raw = &tag[start..end];
    Some(
        raw.replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// One back-channel request's status, latency and JSON body.
pub struct Answer {
    pub status: u16,
    pub latency: Duration,
    pub body: Value,
}

/// Sends a form POST with the client's Basic credentials and times it.
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    id: &Identity,
    form: &[(&str, &str)],
) -> Result<Answer, reqwest::Error> {
    let started = Instant::now();
    let response = http
        .post(url)
        .basic_auth(&id.client_id, Some(&id.client_secret))
        .form(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok(Answer {
        status,
        latency: started.elapsed(),
        body,
    })
}

/// Exchanges a code (RFC 6749 §4.1.3 with PKCE).
pub async fn exchange(
    http: &reqwest::Client,
    ep: &Endpoints,
    id: &Identity,
    code: &str,
    verifier: &str,
) -> Result<Answer, reqwest::Error> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", id.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    post_form(http, &ep.token, id, &form).await
}

/// Refreshes (RFC 6749 §6).
pub async fn refresh(
    http: &reqwest::Client,
    ep: &Endpoints,
    id: &Identity,
    refresh_token: &str,
) -> Result<Answer, reqwest::Error> {
    post_form(
        http,
        &ep.token,
        id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Calls userinfo with a bearer token and times it.
pub async fn userinfo(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
) -> Result<Answer, reqwest::Error> {
    let started = Instant::now();
    let response = http.get(url).bearer_auth(access_token).send().await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok(Answer {
        status,
        latency: started.elapsed(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_with_their_hidden_inputs() {
        let page = r#"<form method="post" action="/login"><input type="hidden" name="flow" value="a&amp;b">
            <input id="p" name="password" type="password"><button>x</button></form>"#;
        let form = Form::parse(page).unwrap();
        assert_eq!(form.action.as_deref(), Some("/login"));
        assert_eq!(form.hidden, vec![("flow".to_owned(), "a&b".to_owned())]);
        assert!(form.has_password);
    }
}
