//! `latchkey serve` (CONTRACT §2).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, anyhow};

use crate::clock::{Clock, SystemClock};
use crate::config::{self, ServeArgs};
use crate::http::{self, AppState};
use crate::protocol::metadata::paths;
use crate::protocol::pkce;
use crate::service::{Latchkey, Settings, admin, keys, maintenance};
use crate::{crypto, store};

pub async fn run(
    database_url: &str,
    sealer: crypto::Sealer,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let bind: SocketAddr = args
        .bind
        .parse()
        .map_err(|_| anyhow!("--bind must be an address such as 127.0.0.1:8080"))?;
    if args.issuer.is_none() && bind.ip().is_unspecified() {
        return Err(anyhow!(
            "--issuer is required when --bind is an unspecified address"
        ));
    }
    // Templates and branding first: a broken override stops the start, before anything else.
    let brand = http::Branding::new(
        args.brand_name.as_deref(),
        args.brand_logo_url.as_deref(),
        args.brand_color.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let pages = http::Pages::new(brand, args.templates.as_deref())
        .map_err(|e| anyhow!("cannot load the page templates: {e}"))?;
    let store = store::connect_with(database_url, args.database_max_connections)
        .await
        .context("cannot open the database")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let issuer = config::issuer(&args, listener.local_addr()?).map_err(anyhow::Error::msg)?;
    let settings = Settings {
        code_ttl: args.code_ttl.as_secs() as i64,
        access_token_ttl: args.access_token_ttl.as_secs() as i64,
        refresh_token_ttl: args.refresh_token_ttl.as_secs() as i64,
        refresh_token_idle_ttl: args.refresh_token_idle_ttl.as_secs() as i64,
        sealer: Arc::new(sealer),
        flow_trail: !args.no_flow_trail,
        ..Settings::new(issuer)
    };
    let clock = Arc::new(SystemClock);
    let svc = Arc::new(
        Latchkey::new(store, clock.clone(), settings)
            .await
            .context("cannot load the signing keys")?,
    );
    if !svc.settings.sealer.is_active() && !args.demo {
        tracing::warn!(
            "signing keys are stored unencrypted; give --secret-key-file to encrypt them at rest"
        );
    }
    let mut playground = None;
    if args.demo {
        let demo =
            admin::ensure_demo(svc.store.as_ref(), &svc.settings.issuer, clock.now()).await?;
        print_demo(&svc.settings.issuer, &demo);
        playground = Some(Arc::new(http::Playground::new(
            demo.playground_secret,
            demo.playground_redirect_uri,
            svc.settings.issuer.clone(),
            listener.local_addr()?,
        )));
    }
    tracing::info!(issuer = %svc.settings.issuer, address = %listener.local_addr()?, "latchkey is listening");
    maintenance::spawn(svc.clone(), args.cleanup_interval);
    keys::spawn_reload(svc.clone());
    let state = AppState {
        trusted_proxies: args.trusted_proxies.clone(),
        pages: Arc::new(pages),
        playground,
        ..AppState::new(svc)
    };
    let app = http::router(state, args.demo);
    http::serve(listener, app, shutdown_signal(), args.shutdown_grace).await?;
    tracing::info!("latchkey stopped");
    Ok(())
}

/// SIGTERM or SIGINT: stop accepting, let in-flight requests finish (CONTRACT §2).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

/// Prints, on the terminal only, how to walk through the flow with the demo client.
fn print_demo(issuer: &str, demo: &admin::Demo) {
    let verifier = crypto::random_token();
    let state = &crypto::random_token()[..12];
    let mut url =
        url::Url::parse(&format!("{issuer}{}", paths::AUTHORIZE)).expect("issuer is a URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", admin::DEMO_CLIENT_ID)
        .append_pair("redirect_uri", &demo.redirect_uri)
        .append_pair("scope", admin::DEFAULT_SCOPES)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce::s256_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    println!(
        "\nLatchkey demo\n\n1. Open this URL in a browser:\n\n   {url}\n\n2. Sign in as  {user} / {password}  and allow access.\n\n\
         3. The page shows the code. Exchange it (codes live 60 s by default):\n\n   \
         curl -s -u '{client}:{secret}' -d grant_type=authorization_code -d code=PASTE_CODE \\\n     \
         --data-urlencode 'redirect_uri={redirect}' -d code_verifier={verifier} {issuer}{token}\n\n\
         4. Call userinfo with the access token:\n\n   curl -s -H 'Authorization: Bearer PASTE_TOKEN' {issuer}{userinfo}\n\n\
         Or watch the whole flow step by step in the playground: {issuer}{playground}\n\n\
         The client secret and password are new on every start of --demo.\n",
        user = admin::DEMO_USERNAME,
        password = demo.password.expose(),
        client = admin::DEMO_CLIENT_ID,
        secret = demo.client_secret.expose(),
        redirect = demo.redirect_uri,
        token = paths::TOKEN,
        userinfo = paths::USERINFO,
        playground = paths::PLAYGROUND,
    );
}
