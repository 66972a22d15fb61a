//! Command line and environment: clap structs whose doc comments are the `--help` text. Every
//! flag of `serve` also reads `LATCHKEY_<FLAG>` (CONTRACT §2).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Latchkey: an OAuth 2.0 authorization server with its own login and consent pages.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version)]
pub struct Cli {
    /// Database: sqlite://PATH (embedded, created on first use) or postgres://...
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        global = true,
        default_value = "sqlite://latchkey.db"
    )]
    pub database_url: String,
    /// File holding a base64 32-byte key that encrypts signing keys in the database
    /// (AES-256-GCM). Without it keys are stored unencrypted.
    #[arg(long, env = "LATCHKEY_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve(ServeArgs),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users of the login page.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print the timeline of the authorization flow a request belonged to: the request's
    /// checks, login, consent, code issued and redeemed, tokens issued (values redacted). The
    /// request id is on every error page, in every JSON error and in the X-Request-Id header.
    Explain {
        #[arg(allow_hyphen_values = true)]
        request_id: String,
        /// Print the events as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Measure a running server: throughput, latency quantiles, errors, server memory and CPU.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    pub scenario: crate::bench::Scenario,
    /// Base URL of the server; repeat to spread the workers over several nodes.
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    pub urls: Vec<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long to measure (default 10s).
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// How many requests to measure, instead of a duration.
    #[arg(long)]
    pub requests: Option<usize>,
    /// Unmeasured warm-up before the measurement; 0s for none.
    #[arg(long, default_value = "2s", value_parser = parse_warmup)]
    pub warmup: Duration,
    /// Client to act as; without it a throw-away client and user are created in the database
    /// of --database-url and removed afterwards.
    #[arg(long, requires_all = ["client_secret", "username", "password"])]
    pub client_id: Option<String>,
    #[arg(long)]
    pub client_secret: Option<String>,
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long)]
    pub password: Option<String>,
    /// The client's registered redirect URI (nothing needs to listen there).
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    pub redirect_uri: String,
    /// Scopes to request.
    #[arg(long, default_value = "openid offline_access")]
    pub scope: String,
    /// PID of the server, to report its peak memory and CPU use (Linux).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A warm-up may be zero.
fn parse_warmup(raw: &str) -> Result<Duration, String> {
    if raw == "0" || raw == "0s" {
        Ok(Duration::ZERO)
    } else {
        parse_duration(raw)
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys, retired ones included, as a JSON array (never private parts).
    List,
    /// Create a new key; it is published at once and signs 10 minutes later, on every node.
    Rotate {
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
    /// Stop publishing a key: tokens it signed stop verifying. Retire a key only after the
    /// access-token lifetime has passed since its successor started signing.
    Retire {
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Print the number of rows in each table as one JSON object.
    Stats,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Issuer URL (RFC 8414); defaults to http://<bind>. Required when --bind is 0.0.0.0 or [::].
    #[arg(long, env = "LATCHKEY_ISSUER")]
    pub issuer: Option<String>,
    /// Authorization code lifetime, at most 10m.
    #[arg(long, env = "LATCHKEY_CODE_TTL", default_value = "60s", value_parser = parse_code_ttl)]
    pub code_ttl: Duration,
    /// Access token lifetime.
    #[arg(long, env = "LATCHKEY_ACCESS_TOKEN_TTL", default_value = "10m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,
    /// Absolute lifetime of a refresh-token family.
    #[arg(long, env = "LATCHKEY_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,
    /// A refresh-token family unused this long ends.
    #[arg(long, env = "LATCHKEY_REFRESH_TOKEN_IDLE_TTL", default_value = "14d", value_parser = parse_duration)]
    pub refresh_token_idle_ttl: Duration,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[arg(long, env = "LATCHKEY_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Size of the database connection pool.
    #[arg(long, env = "LATCHKEY_DATABASE_MAX_CONNECTIONS", default_value_t = crate::store::DEFAULT_MAX_CONNECTIONS)]
    pub database_max_connections: u32,
    /// How often expired codes, sessions, pending requests and grants are removed.
    #[arg(long, env = "LATCHKEY_CLEANUP_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub cleanup_interval: Duration,
    /// A reverse proxy whose X-Forwarded-For is believed (repeat, or comma-separate in the env
    /// var); requests from any other address are judged by their own peer address.
    #[arg(
        long = "trusted-proxy",
        env = "LATCHKEY_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Create (once) a demo user and a demo client and print how to use them; serves the
    /// flow playground at /playground.
    #[arg(long, env = "LATCHKEY_DEMO")]
    pub demo: bool,
    /// Do not record flow steps for `latchkey explain`.
    #[arg(long, env = "LATCHKEY_NO_FLOW_TRAIL")]
    pub no_flow_trail: bool,
    /// Name shown at the top of every page and in page titles.
    #[arg(long, env = "LATCHKEY_BRAND_NAME")]
    pub brand_name: Option<String>,
    /// Logo shown next to the name: an https URL or a path on this host.
    #[arg(long, env = "LATCHKEY_BRAND_LOGO_URL")]
    pub brand_logo_url: Option<String>,
    /// Accent colour of buttons and links, such as #1f5fbf; text colours are derived from it at
    /// WCAG AA contrast.
    #[arg(long, env = "LATCHKEY_BRAND_COLOR")]
    pub brand_color: Option<String>,
    /// Directory of templates replacing the built-in ones file by file (login.html,
    /// consent.html, ...; README lists them and their variables), and optionally latchkey.css.
    #[arg(long, env = "LATCHKEY_TEMPLATES")]
    pub templates: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and, once, its client_secret.
    Create(ClientCreateArgs),
    /// List clients as a JSON array.
    List,
    /// Show one client (never its secret).
    Show {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete a client and everything issued to it.
    Delete {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Issue a new client secret; the old one stops working at once.
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ClientCreateArgs {
    /// Name shown to users on the consent page.
    #[arg(long)]
    pub name: String,
    /// A redirect URI, compared byte for byte; repeat for several.
    #[arg(long = "redirect-uri", required = true)]
    pub redirect_uris: Vec<String>,
    /// A public client (no secret; native or browser app; PKCE required).
    #[arg(long)]
    pub public: bool,
    /// Scopes the client may request, space-separated.
    #[arg(long)]
    pub scope: Option<String>,
    /// The `aud` of its access tokens (default: the issuer).
    #[arg(long)]
    pub audience: Option<String>,
    /// Access-token signing algorithm.
    #[arg(long, default_value = "ES256")]
    pub access_token_alg: String,
    /// ID-token signing algorithm (OIDC Core §15.1 makes RS256 the default every OP supports).
    #[arg(long, default_value = "RS256")]
    pub id_token_alg: String,
    /// A grant beyond the default authorization_code and refresh_token; repeat for several.
    /// `client_credentials` is for confidential clients only.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Where the client may send the browser after logout (RP-Initiated Logout 1.0), compared
    /// byte for byte; repeat for several.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Let this confidential client omit PKCE. Weaker: RFC 9700 §2.1.1 recommends PKCE for all.
    #[arg(long)]
    pub allow_no_pkce: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Create(UserCreateArgs),
    /// List users as a JSON array.
    List,
    /// Set a user's password from the first line of standard input; ends their sessions.
    SetPassword {
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Disable a user: no more logins, sessions ended, grants revoked.
    Disable {
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Set a user's OpenID Connect profile claims; an empty value clears name or email.
    SetClaims {
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// Full name (`name`, scope `profile`).
        #[arg(long)]
        name: Option<String>,
        /// Email address (`email`, scope `email`).
        #[arg(long)]
        email: Option<String>,
        /// Whether the address is verified (`email_verified`).
        #[arg(long)]
        email_verified: Option<bool>,
    },
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: Option<String>,
    /// Full name.
    #[arg(long)]
    pub name: Option<String>,
}

/// Durations as `30s`, `10m`, `12h`, `30d`, or combinations such as `1h30m` (CONTRACT §5).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(raw)
        .map_err(|e| format!("{e} (use forms such as 30s, 10m, 12h, 30d)"))?;
    if duration.is_zero() {
        return Err("a duration must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED." Longer
/// is refused, never clamped.
pub fn parse_code_ttl(raw: &str) -> Result<Duration, String> {
    let ttl = parse_duration(raw)?;
    if ttl > Duration::from_secs(600) {
        return Err("the authorization code lifetime may not exceed 10m".to_owned());
    }
    Ok(ttl)
}

/// The issuer: an absolute http(s) URL without query or fragment (RFC 8414 §2), defaulting to
/// `http://<bind>`, which an unspecified address cannot be.
pub fn issuer(args: &ServeArgs, bound: std::net::SocketAddr) -> Result<String, String> {
    let raw = match &args.issuer {
        Some(issuer) => issuer.clone(),
        None if bound.ip().is_unspecified() => {
            return Err("--issuer is required when --bind is an unspecified address".to_owned());
        }
        None => format!("http://{bound}"),
    };
    let url =
        url::Url::parse(&raw).map_err(|_| format!("--issuer is not an absolute URL: {raw}"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("--issuer must be an http(s) URL without query or fragment".to_owned());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_contract_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn code_ttl_above_ten_minutes_is_refused_not_clamped() {
        assert_eq!(parse_code_ttl("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_code_ttl("11m").is_err());
        assert!(parse_code_ttl("10m1s").is_err());
    }
}
