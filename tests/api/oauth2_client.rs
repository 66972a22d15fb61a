//! A full flow driven by the `oauth2` crate as the client: an implementation we did not write.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn oauth2_crate_completes_the_code_flow_with_pkce_and_refresh() {
    let app = spawn_app().await;
    app.user("alice").await;
    let registered = app.client().await;
    let metadata = app.metadata().await;
    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
        .set_auth_uri(
            AuthUrl::new(
                metadata["authorization_endpoint"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .unwrap(),
        )
        .set_token_uri(
            TokenUrl::new(metadata["token_endpoint"].as_str().unwrap().to_owned()).unwrap(),
        )
        .set_redirect_uri(RedirectUrl::new(CB.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new();
    let started = browser.get(auth_url.as_str()).await;
    let logged_in = browser.login(&app, &started, "alice", PASSWORD).await;
    let back = browser.consent(&app, &logged_in, "allow").await;
    let params = back.redirect_params();
    assert_eq!(&params["state"], csrf.secret());

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the oauth2 crate accepts Latchkey's token response");
    let access_token = tokens.access_token().secret();
    assert_eq!(userinfo(&app, access_token).await.status, StatusCode::OK);
    let refresh_token = tokens
        .refresh_token()
        .expect("a refresh token")
        .secret()
        .clone();
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token))
        .request_async(&http)
        .await
        .expect("refresh with the oauth2 crate");
    assert_ne!(refreshed.access_token().secret(), access_token);
}
