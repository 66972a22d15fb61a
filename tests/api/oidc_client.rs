//! A full OpenID Connect code flow driven by the `openidconnect` crate as the relying party:
//! discovery, PKCE, nonce, ID-token verification, `at_hash` and userinfo, checked by an
//! implementation we did not write.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;

use crate::helpers::*;

/// The client `CoreClient::from_provider_metadata` builds: authorization endpoint set, token
/// and userinfo endpoints as discovered.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the relying party holds after the code exchange.
struct SignedIn {
    client: DiscoveredClient,
    http: reqwest::Client,
    tokens: CoreTokenResponse,
    nonce: Nonce,
}

/// Discovery, then authorize (PKCE S256, nonce, `openid profile email`), login and consent in
/// the test browser, then the code exchange, all requests built by the crate.
async fn sign_in_with_the_crate(app: &TestApp, registered: &TestClient) -> SignedIn {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("the crate accepts the discovery document and the JWKS");
    assert_eq!(metadata.issuer().as_str(), app.base);
    assert!(
        metadata
            .id_token_signing_alg_values_supported()
            .contains(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        "RS256 is advertised (OIDC Core §15.1)"
    );
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.id.clone()),
        Some(ClientSecret::new(registered.secret.clone().unwrap())),
    )
    .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let sent: std::collections::HashMap<String, String> =
        auth_url.query_pairs().into_owned().collect();
    assert_eq!(sent["nonce"], *nonce.secret());
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(sent["scope"], "openid profile email");

    let browser = Browser::new();
    let started = browser.get(auth_url.as_str()).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let logged_in = browser.login(app, &started, "alice", PASSWORD).await;
    let back = browser.consent(app, &logged_in, "allow").await;
    let params = back.redirect_params();
    assert_eq!(&params["state"], csrf.secret());
    assert_eq!(params["iss"], app.base);

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("the token endpoint was discovered")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the crate accepts Latchkey's token response");
    SignedIn {
        client,
        http,
        tokens,
        nonce,
    }
}

#[tokio::test]
async fn openidconnect_crate_discovers_signs_in_verifies_the_id_token_and_reads_userinfo() {
    let app = spawn_app().await;
    let sub = app.user("alice").await;
    let registered = app.client().await;
    let signed_in = sign_in_with_the_crate(&app, &registered).await;
    let SignedIn {
        client,
        http,
        tokens,
        nonce,
    } = &signed_in;

    let id_token = tokens.id_token().expect("scope openid yields an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, nonce)
        .expect("signature, iss, aud, exp, iat and nonce verify");
    assert_eq!(claims.subject().as_str(), sub);
    assert_eq!(claims.issuer().as_str(), app.base);
    assert_eq!(
        claims
            .audiences()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        [registered.id.as_str()]
    );
    assert_eq!(
        claims.authorized_party().map(|p| p.as_str()),
        Some(registered.id.as_str())
    );
    assert_eq!(claims.nonce().map(Nonce::secret), Some(nonce.secret()));
    assert!(claims.auth_time().is_some(), "auth_time is stated");
    assert_eq!(
        *id_token.signing_alg().unwrap(),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "RS256 unless the client registered another algorithm"
    );

    // OIDC Core §3.1.3.8: at_hash binds the access token to the ID token.
    let expected = claims
        .access_token_hash()
        .expect("at_hash is present")
        .clone();
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(actual, expected);

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("the userinfo endpoint was discovered")
        .request_async(http)
        .await
        .expect("the crate accepts the userinfo response for the ID token's subject");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("alice Example")
    );
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.email_verified(), Some(false));
}

#[tokio::test]
async fn openidconnect_crate_rejects_the_id_token_for_another_nonce() {
    let app = spawn_app().await;
    app.user("alice").await;
    let registered = app.client().await;
    let signed_in = sign_in_with_the_crate(&app, &registered).await;
    let id_token = signed_in.tokens.id_token().expect("an ID token");
    let verifier = signed_in.client.id_token_verifier();

    let wrong = Nonce::new_random();
    assert_ne!(wrong.secret(), signed_in.nonce.secret());
    let refused = id_token.claims(&verifier, &wrong);
    assert!(
        matches!(refused, Err(ClaimsVerificationError::InvalidNonce(_))),
        "a replayed ID token from another request must fail on its nonce: {refused:?}"
    );
    // Everything else about the token is sound: the nonce alone made the difference.
    assert!(id_token.claims(&verifier, &signed_in.nonce).is_ok());
}
