//! The token endpoint: code exchange, client authentication, PKCE, errors (checklist sections
//! D, E, F, G and H).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn happy_path_with_pkce_yields_a_jwt_verified_by_the_jwks_and_userinfo_answers() {
    let app = spawn_app().await;
    let sub = app.user("alice").await;
    let client = app.client().await;
    let flow = flow(
        &app,
        &client,
        "alice",
        "openid profile email offline_access",
    )
    .await;
    let answer = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    let body = answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "email offline_access openid profile");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);

    // H46: RFC 9068 header and claims, verified with the published key.
    let access_token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let jwks_url = app.metadata().await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks: JwkSet = reqwest::get(jwks_url).await.unwrap().json().await.unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&app.base]);
    validation.set_audience(&[&app.base]);
    let claims = jsonwebtoken::decode::<Value>(
        access_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["scope"], "email offline_access openid profile");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    for claim in ["jti", "auth_time", "iat"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }
    assert!(
        claims.get("email").is_none(),
        "no personal data in the access token"
    );

    let info = userinfo(&app, access_token).await;
    assert_eq!(info.status, StatusCode::OK);
    let info = info.json();
    assert_eq!(info["sub"], sub);
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email"], "alice@example.com");
}

#[tokio::test]
async fn h49_jwks_publishes_public_parameters_only() {
    let app = spawn_app().await;
    let jwks: Value = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let ec = keys
        .iter()
        .find(|k| k["alg"] == "ES256")
        .expect("the default ES256 key");
    assert_eq!(
        (ec["kty"].as_str(), ec["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "{private} must not be published"
            );
        }
    }
}

#[tokio::test]
async fn d26_replayed_code_is_rejected_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let first = exchange(&app, &client, &flow.code, &flow.verifier)
        .await
        .json();
    let second = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.json()["error"], "invalid_grant");
    let info = userinfo(&app, first["access_token"].as_str().unwrap()).await;
    assert_eq!(
        info.status,
        StatusCode::UNAUTHORIZED,
        "the access token from the replayed code is revoked"
    );
    let refreshed = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        refreshed.json()["error"],
        "invalid_grant",
        "so is the refresh token"
    );
}

#[tokio::test]
async fn d26_twenty_concurrent_redemptions_give_exactly_one_success() {
    let app = std::sync::Arc::new(spawn_app().await);
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, client, code, verifier) = (
            app.clone(),
            client.clone(),
            flow.code.clone(),
            flow.verifier.clone(),
        );
        attempts.spawn(async move { exchange(&app, &client, &code, &verifier).await });
    }
    let answers = attempts.join_all().await;
    let successes = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    assert_eq!(
        successes,
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for failed in answers.iter().filter(|a| a.status != StatusCode::OK) {
        assert_eq!(failed.json()["error"], "invalid_grant");
    }
}

#[tokio::test]
async fn d27_expired_code_is_rejected() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    app.clock.advance(61);
    let answer = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn d27_code_is_valid_until_its_lifetime_ends() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    app.clock.advance(59);
    assert_eq!(
        exchange(&app, &client, &flow.code, &flow.verifier)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn d28_code_is_bound_to_its_client_and_a_wrong_client_burns_it() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let stolen = exchange(
        &app,
        &TestClient {
            redirect_uri: client.redirect_uri.clone(),
            ..other
        },
        &flow.code,
        &flow.verifier,
    )
    .await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    let rightful = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(
        rightful.json()["error"],
        "invalid_grant",
        "the failed attempt burned the code"
    );

    let spa = app.public_client("https://spa.example/cb").await;
    let cli = app.public_client("https://spa.example/cb").await;
    let flow = crate::helpers::flow(&app, &spa, "alice", "openid").await;
    let wrong_public = exchange(&app, &cli, &flow.code, &flow.verifier).await;
    assert_eq!(wrong_public.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn d29_redirect_uri_must_equal_the_authorization_request() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app
        .client_with(
            vec![
                "https://app.example/a".into(),
                "https://app.example/b".into(),
            ],
            false,
            None,
        )
        .await;
    for redirect_uri in [Some("https://app.example/b"), None] {
        let flow = flow(&app, &client, "alice", "openid").await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", flow.code.as_str()),
            ("code_verifier", flow.verifier.as_str()),
        ];
        if let Some(uri) = redirect_uri {
            form.push(("redirect_uri", uri));
        }
        let answer = token(&app, &client, &form).await;
        assert_eq!(answer.json()["error"], "invalid_grant", "{redirect_uri:?}");
    }
}

#[tokio::test]
async fn e32_verifier_is_mandatory_and_a_wrong_one_burns_the_code() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow1 = flow(&app, &client, "alice", "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", flow1.code.as_str()),
        ("redirect_uri", CB),
    ];
    assert_eq!(
        token(&app, &client, &form).await.json()["error"],
        "invalid_grant",
        "no verifier"
    );

    let flow2 = flow(&app, &client, "alice", "openid").await;
    let short = "a".repeat(42);
    assert_eq!(
        exchange(&app, &client, &flow2.code, &short).await.json()["error"],
        "invalid_grant",
        "42 chars"
    );

    let flow3 = flow(&app, &client, "alice", "openid").await;
    let (wrong, _) = pkce_pair();
    assert_eq!(
        exchange(&app, &client, &flow3.code, &wrong).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        exchange(&app, &client, &flow3.code, &flow3.verifier)
            .await
            .json()["error"],
        "invalid_grant",
        "burned"
    );
}

#[tokio::test]
async fn e34_the_challenge_itself_is_not_a_verifier_and_method_cannot_change() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let challenge = latchkey::protocol::pkce::s256_challenge(&flow.verifier);
    assert_eq!(
        exchange(&app, &client, &flow.code, &challenge).await.json()["error"],
        "invalid_grant"
    );
    let flow = crate::helpers::flow(&app, &client, "alice", "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", flow.code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", flow.verifier.as_str()),
        ("code_challenge_method", "plain"),
    ];
    assert_eq!(
        token(&app, &client, &form).await.status,
        StatusCode::OK,
        "extra parameters are ignored"
    );
}

#[tokio::test]
async fn public_client_exchanges_with_client_id_and_pkce() {
    let app = spawn_app().await;
    app.user("alice").await;
    let spa = app.public_client("https://spa.example/cb").await;
    let flow = flow(&app, &spa, "alice", "openid offline_access").await;
    let answer = exchange(&app, &spa, &flow.code, &flow.verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let rotated = refresh(&app, &spa, answer.json()["refresh_token"].as_str().unwrap()).await;
    assert_eq!(rotated.status, StatusCode::OK);
}

#[tokio::test]
async fn f36_f37_client_authentication_rules() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let secret = client.secret.clone().unwrap();
    let http = reqwest::Client::new();
    let body = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", CB),
        ("code_verifier", "y"),
    ];

    let none = answer(
        http.post(app.url("/token"))
            .form(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json()["error"], "invalid_client");

    let confidential_as_public = answer(
        http.post(app.url("/token"))
            .form(&[body.as_slice(), &[("client_id", client.id.as_str())]].concat())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        confidential_as_public.status,
        StatusCode::UNAUTHORIZED,
        "a confidential client must authenticate"
    );

    let in_query = http
        .post(app.url(&format!(
            "/token?client_id={}&client_secret={secret}",
            client.id
        )))
        .form(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), StatusCode::BAD_REQUEST);

    let both = http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some(&secret))
        .form(&[body.as_slice(), &[("client_secret", secret.as_str())]].concat())
        .send()
        .await
        .unwrap();
    let both = answer(both).await;
    assert_eq!(
        (both.status, both.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let wrong_basic = answer(
        http.post(app.url("/token"))
            .basic_auth(&client.id, Some("wrong"))
            .form(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong_basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_basic.json()["error"], "invalid_client");
    assert!(
        wrong_basic
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(wrong_basic.header("cache-control"), Some("no-store"));

    let wrong_post = [
        body.as_slice(),
        &[
            ("client_id", client.id.as_str()),
            ("client_secret", "wrong"),
        ],
    ]
    .concat();
    let wrong_post = answer(
        http.post(app.url("/token"))
            .form(&wrong_post)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong_post.status, StatusCode::UNAUTHORIZED);

    let unknown = answer(
        http.post(app.url("/token"))
            .basic_auth("nope", Some(&secret))
            .form(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    // client_secret_post with the right secret authenticates.
    let flow = flow(&app, &client, "alice", "openid").await;
    let post = [
        ("grant_type", "authorization_code"),
        ("code", flow.code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", flow.verifier.as_str()),
        ("client_id", client.id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    assert_eq!(
        http.post(app.url("/token"))
            .form(&post)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn f38_unsupported_grants_are_refused() {
    let app = spawn_app().await;
    let client = app.client().await;
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let answer = token(
            &app,
            &client,
            &[
                ("grant_type", grant),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")),
            "{grant}"
        );
    }
    // Supported, but not allowed to this client (it was not registered with it).
    let answer = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn g42_token_endpoint_is_form_post_only_and_get_consumes_nothing() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let get = reqwest::get(app.url(&format!(
        "/token?grant_type=authorization_code&code={}&redirect_uri={CB}",
        flow.code
    )))
    .await
    .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let json = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .json(&serde_json::json!({"grant_type": "authorization_code", "code": flow.code}))
        .send()
        .await
        .unwrap();
    let json = answer(json).await;
    assert_eq!(
        (json.status, json.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(
        exchange(&app, &client, &flow.code, &flow.verifier)
            .await
            .status,
        StatusCode::OK,
        "the code was not consumed"
    );
}

#[tokio::test]
async fn g44_garbage_input_gets_rfc_errors_and_reveals_nothing() {
    let app = spawn_app().await;
    let client = app.client().await;
    let big = "A".repeat(10_000);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "\u{FFFE}"),
                ("redirect_uri", CB),
                ("code_verifier", "x"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "' OR 1=1--"),
                ("redirect_uri", CB),
                ("code_verifier", "x"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", &big),
                ("redirect_uri", CB),
                ("code_verifier", "x"),
            ],
            "invalid_grant",
        ),
        (vec![("grant_type", "")], "invalid_request"),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "a"),
                ("code", "b"),
            ],
            "invalid_request",
        ),
        (
            vec![("grant_type", "authorization_code")],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("scope", "a\"b"),
            ],
            "invalid_scope",
        ),
    ];
    for (form, expected) in cases {
        let answer = token(&app, &client, &form).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(answer.json()["error"], expected, "{form:?}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        for leak in ["sqlx", "panicked", "SQLITE", "sqlite", ".rs"] {
            assert!(!answer.body.contains(leak), "{leak} in {}", answer.body);
        }
    }
}

#[tokio::test]
async fn l64_oversized_bodies_are_refused_before_parsing() {
    let app = spawn_app().await;
    let client = app.client().await;
    let huge = "v".repeat(1024 * 1024);
    let answer = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", &huge),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}
