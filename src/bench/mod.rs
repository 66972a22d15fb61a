//! `latchkey bench`: drives a running Latchkey, or any server with a discovery document and the
//! login and consent forms of CONTRACT §4, and reports throughput, latency quantiles, errors
//! and the server's resource use.

mod client;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::ValueEnum;
use tokio::task::JoinSet;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::config::BenchArgs;
use crate::crypto;
use crate::protocol::types::Password;
use crate::service::admin::{self, NewClient, NewUser};
use crate::store::{self, Store};
use client::{Endpoints, Identity};
pub use stats::{Recorder, Report};

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// A whole flow per request: authorize, login (Argon2id), consent, token exchange.
    CodeFlow,
    /// Token exchanges only; codes are minted beforehand and not timed.
    TokenExchange,
    /// Rotating refresh-token chains, one per worker.
    Refresh,
    /// Introspection of one access token.
    Introspect,
    /// Userinfo with one access token.
    Userinfo,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::CodeFlow => "code-flow",
            Scenario::TokenExchange => "token-exchange",
            Scenario::Refresh => "refresh",
            Scenario::Introspect => "introspect",
            Scenario::Userinfo => "userinfo",
        }
    }
}

/// How long or how much to measure.
#[derive(Clone, Copy, Debug)]
enum Budget {
    Time(Duration),
    Requests(usize),
}

/// Everything the workers share.
struct Run {
    nodes: Vec<Endpoints>,
    id: Identity,
    http: reqwest::Client,
    done: AtomicU64,
}

/// Runs the benchmark the arguments describe and prints its report.
pub async fn run(database_url: &str, args: BenchArgs) -> anyhow::Result<()> {
    let http = client::api_client();
    let mut nodes = Vec::new();
    for url in &args.urls {
        let endpoints = client::discover(&http, url).await?;
        nodes.push(rebase(endpoints, url)?);
    }
    let (id, provisioned) = identity(database_url, &args).await?;
    let run = Arc::new(Run {
        nodes,
        id,
        http,
        done: AtomicU64::new(0),
    });
    let result = measure(&run, &args).await;
    if let Some((store, client_id, username)) = provisioned {
        let _ = store.delete_client(&client_id).await;
        let _ = store.delete_user(&username).await;
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

async fn measure(run: &Arc<Run>, args: &BenchArgs) -> anyhow::Result<Report> {
    let concurrency = args.concurrency.max(1);
    if !args.warmup.is_zero() {
        scenario(run, args.scenario, concurrency, Budget::Time(args.warmup)).await?;
    }
    run.done.store(0, Ordering::Relaxed);
    let budget = match (args.requests, args.duration) {
        (Some(n), _) => Budget::Requests(n),
        (None, Some(d)) => Budget::Time(d),
        (None, None) => Budget::Time(Duration::from_secs(10)),
    };
    let before = args.pid.and_then(stats::process_sample);
    let progress = progress_line(run.clone());
    let (recorder, elapsed) = scenario(run, args.scenario, concurrency, budget).await?;
    progress.abort();
    eprintln!();
    let server = match (args.pid, before) {
        (Some(pid), Some((_, ticks_before))) => {
            stats::process_sample(pid).map(|(peak, ticks)| stats::ProcessUse {
                peak_rss_mib: peak,
                // Linux reports CPU time in clock ticks of 1/100 s.
                cpu_cores: (ticks.saturating_sub(ticks_before)) as f64
                    / 100.0
                    / elapsed.as_secs_f64().max(1e-9),
            })
        }
        _ => None,
    };
    Ok(Report::new(
        args.scenario.name(),
        concurrency,
        recorder,
        elapsed,
        server,
    ))
}

/// One progress line on stderr, rewritten every second.
fn progress_line(run: Arc<Run>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let done = run.done.load(Ordering::Relaxed);
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprint!("\r{done} requests, {rate:.0}/s   ");
        }
    })
}

/// Runs a scenario within `budget`; returns what was recorded and the measured time.
async fn scenario(
    run: &Arc<Run>,
    scenario: Scenario,
    concurrency: usize,
    budget: Budget,
) -> anyhow::Result<(Recorder, Duration)> {
    match scenario {
        Scenario::TokenExchange => token_exchange(run, concurrency, budget).await,
        _ => closed_loop(run, scenario, concurrency, budget).await,
    }
}

/// Workers that each repeat one timed request until the budget is spent.
async fn closed_loop(
    run: &Arc<Run>,
    scenario: Scenario,
    concurrency: usize,
    budget: Budget,
) -> anyhow::Result<(Recorder, Duration)> {
    let issued = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    // Set-up (tokens to refresh, introspect or present) is done before the clock starts.
    let mut states = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        states.push(prepare(run, scenario, worker).await?);
    }
    let started = Instant::now();
    for (worker, mut state) in states.into_iter().enumerate() {
        let (run, issued) = (run.clone(), issued.clone());
        workers.spawn(async move {
            let mut recorder = Recorder::default();
            let endpoints = &run.nodes[worker % run.nodes.len()];
            while within(budget, started, &issued) {
                step(&run, endpoints, scenario, &mut state, &mut recorder).await;
                run.done.fetch_add(1, Ordering::Relaxed);
            }
            recorder
        });
    }
    let mut recorder = Recorder::default();
    while let Some(result) = workers.join_next().await {
        recorder.merge(result?);
    }
    Ok((recorder, started.elapsed()))
}

fn within(budget: Budget, started: Instant, issued: &AtomicUsize) -> bool {
    match budget {
        Budget::Time(d) => started.elapsed() < d,
        Budget::Requests(n) => issued.fetch_add(1, Ordering::Relaxed) < n,
    }
}

/// Per-worker state of the closed-loop scenarios.
enum State {
    Nothing,
    RefreshToken(String),
    AccessToken(String),
}

async fn prepare(run: &Run, scenario: Scenario, worker: usize) -> anyhow::Result<State> {
    let endpoints = &run.nodes[worker % run.nodes.len()];
    match scenario {
        Scenario::CodeFlow | Scenario::TokenExchange => Ok(State::Nothing),
        Scenario::Refresh | Scenario::Introspect | Scenario::Userinfo => {
            let (code, verifier) = client::Browser::new().code(endpoints, &run.id).await?;
            let answer = client::exchange(&run.http, endpoints, &run.id, &code, &verifier).await?;
            if answer.status != 200 {
                bail!(
                    "the set-up token exchange failed with status {}: {}",
                    answer.status,
                    answer.body
                );
            }
            let field = |name: &str| answer.body[name].as_str().map(str::to_owned);
            match scenario {
                Scenario::Refresh => Ok(State::RefreshToken(
                    field("refresh_token").context("no refresh token")?,
                )),
                _ => Ok(State::AccessToken(
                    field("access_token").context("no access token")?,
                )),
            }
        }
    }
}

async fn step(
    run: &Run,
    endpoints: &Endpoints,
    scenario: Scenario,
    state: &mut State,
    recorder: &mut Recorder,
) {
    let answer = match (scenario, &*state) {
        (Scenario::CodeFlow, _) => {
            let started = Instant::now();
            match client::Browser::new().code(endpoints, &run.id).await {
                Ok((code, verifier)) => {
                    client::exchange(&run.http, endpoints, &run.id, &code, &verifier)
                        .await
                        .map(|a| client::Answer {
                            latency: started.elapsed(),
                            ..a
                        })
                }
                Err(_) => return recorder.record_failure("flow"),
            }
        }
        (Scenario::Refresh, State::RefreshToken(token)) => {
            client::refresh(&run.http, endpoints, &run.id, token).await
        }
        (Scenario::Introspect, State::AccessToken(token)) => match &endpoints.introspection {
            Some(url) => client::post_form(&run.http, url, &run.id, &[("token", token)]).await,
            None => return recorder.record_failure("no introspection endpoint"),
        },
        (Scenario::Userinfo, State::AccessToken(token)) => match &endpoints.userinfo {
            Some(url) => client::userinfo(&run.http, url, token).await,
            None => return recorder.record_failure("no userinfo endpoint"),
        },
        _ => return recorder.record_failure("no state"),
    };
    match answer {
        Ok(answer) => {
            if let (Scenario::Refresh, Some(next)) =
                (scenario, answer.body["refresh_token"].as_str())
            {
                *state = State::RefreshToken(next.to_owned());
            }
            recorder.record(answer.latency, answer.status);
        }
        Err(error) => recorder.record_failure(if error.is_connect() { "connect" } else { "io" }),
    }
}

/// Codes are minted in rounds (untimed), then each round's codes are exchanged concurrently
/// (timed), until the budget is spent. Rounds stay small so no code outlives its lifetime.
async fn token_exchange(
    run: &Arc<Run>,
    concurrency: usize,
    budget: Budget,
) -> anyhow::Result<(Recorder, Duration)> {
    const PER_WORKER: usize = 100;
    let browsers: Arc<Vec<client::Browser>> =
        Arc::new((0..concurrency).map(|_| client::Browser::new()).collect());
    let mut recorder = Recorder::default();
    let mut measured = Duration::ZERO;
    let mut exchanged = 0usize;
    loop {
        let remaining = match budget {
            Budget::Time(d) if measured >= d => break,
            Budget::Requests(n) if exchanged >= n => break,
            Budget::Time(_) => usize::MAX,
            Budget::Requests(n) => n - exchanged,
        };
        let per_worker = PER_WORKER.min(remaining.div_ceil(concurrency));
        let mut minting = JoinSet::new();
        for worker in 0..concurrency {
            let (run, browsers) = (run.clone(), browsers.clone());
            minting.spawn(async move {
                let endpoints = &run.nodes[worker % run.nodes.len()];
                let mut codes = Vec::with_capacity(per_worker);
                for _ in 0..per_worker {
                    codes.push(browsers[worker].code(endpoints, &run.id).await?);
                }
                anyhow::Ok((worker, codes))
            });
        }
        let mut batches = Vec::with_capacity(concurrency);
        while let Some(result) = minting.join_next().await {
            batches.push(result??);
        }
        let started = Instant::now();
        let mut exchanging = JoinSet::new();
        for (worker, codes) in batches {
            let run = run.clone();
            exchanging.spawn(async move {
                let endpoints = &run.nodes[worker % run.nodes.len()];
                let mut recorder = Recorder::default();
                for (code, verifier) in codes {
                    match client::exchange(&run.http, endpoints, &run.id, &code, &verifier).await {
                        Ok(answer) => recorder.record(answer.latency, answer.status),
                        Err(_) => recorder.record_failure("io"),
                    }
                    run.done.fetch_add(1, Ordering::Relaxed);
                }
                recorder
            });
        }
        while let Some(result) = exchanging.join_next().await {
            let part = result?;
            exchanged += part.successes();
            recorder.merge(part);
        }
        measured += started.elapsed();
        if exchanged == 0 {
            break;
        }
    }
    Ok((recorder, measured))
}

/// The discovery document names the issuer's URLs; a run against several nodes sends each
/// node's share to that node, keeping the paths.
fn rebase(endpoints: Endpoints, node: &str) -> anyhow::Result<Endpoints> {
    let node = Url::parse(node).context("--url must be an absolute URL")?;
    let move_to_node = |endpoint: &str| -> anyhow::Result<String> {
        let mut url = Url::parse(endpoint)?;
        url.set_scheme(node.scheme())
            .map_err(|_| anyhow!("cannot rebase {endpoint}"))?;
        url.set_host(node.host_str())?;
        url.set_port(node.port())
            .map_err(|_| anyhow!("cannot rebase {endpoint}"))?;
        Ok(url.into())
    };
    Ok(Endpoints {
        authorization: move_to_node(&endpoints.authorization)?,
        token: move_to_node(&endpoints.token)?,
        introspection: endpoints
            .introspection
            .as_deref()
            .map(move_to_node)
            .transpose()?,
        userinfo: endpoints
            .userinfo
            .as_deref()
            .map(move_to_node)
            .transpose()?,
    })
}

/// The client and user to act as: given on the command line, or created in the local database
/// for this run (and removed afterwards).
async fn identity(
    database_url: &str,
    args: &BenchArgs,
) -> anyhow::Result<(Identity, Option<(Arc<dyn Store>, String, String)>)> {
    let scope = args.scope.clone();
    if let Some(client_id) = &args.client_id {
        let missing = |flag: &str| anyhow!("{flag} is required with --client-id");
        let id = Identity {
            client_id: client_id.clone(),
            client_secret: args
                .client_secret
                .clone()
                .ok_or_else(|| missing("--client-secret"))?,
            redirect_uri: args.redirect_uri.clone(),
            username: args.username.clone().ok_or_else(|| missing("--username"))?,
            password: args.password.clone().ok_or_else(|| missing("--password"))?,
            scope,
        };
        return Ok((id, None));
    }
    let store = store::connect(database_url)
        .await
        .context("cannot open the database to provision a client")?;
    let now = SystemClock.now();
    let suffix = &crypto::random_token()[..10];
    let new = NewClient::new(
        format!("latchkey bench {suffix}"),
        args.redirect_uri.clone(),
    );
    let created = admin::create_client(store.as_ref(), new, now).await?;
    let username = format!("bench-{suffix}");
    let password = crypto::random_token();
    let user = NewUser {
        username: username.clone(),
        email: None,
        name: None,
        password: Password::new(password.clone()),
    };
    admin::create_user(store.as_ref(), user, now).await?;
    let id = Identity {
        client_id: created.client.id.clone(),
        client_secret: created
            .secret
            .map(|s| s.expose().to_owned())
            .unwrap_or_default(),
        redirect_uri: args.redirect_uri.clone(),
        username: username.clone(),
        password,
        scope,
    };
    Ok((id, Some((store, created.client.id, username))))
}
