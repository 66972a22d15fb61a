//! Crash safety: `latchkey serve` is killed with SIGKILL while token exchanges and refreshes are
//! in flight, restarted on the same database, and the single-use and rotation invariants are
//! checked against what the client received and what the database holds: no code redeemed
//! twice, no refresh family with two live tokens, every token the client received either works
//! or was ended by a rule, and on SQLite `PRAGMA integrity_check` answers `ok`.
//!
//! Three kill/restart cycles, each killing at a different point (after 2, 20 and 45 answers), so
//! the kill lands before, during and after most of the writes. Besides the twin requests (every
//! code and refresh token sent twice at once), a few refresh chains rotate their family over and
//! over until the kill, so writes are in progress whenever it lands.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::Db;
use crate::helpers::*;

const CYCLES: usize = 3;
/// Codes minted per cycle.
const CODES: usize = 30;
/// Codes exchanged before the crash for families refreshed twice at once.
const TWIN_FAMILIES: usize = 10;
/// Codes exchanged before the crash for families rotated in a loop until the kill.
const CHAIN_FAMILIES: usize = 4;
/// The longest a refresh chain runs if the kill never comes.
const CHAIN_LIMIT: usize = 400;
/// Answers received before the kill, per cycle.
const KILL_AFTER: [usize; CYCLES] = [2, 20, 45];

// ---------------------------------------------------------------------------------------------
// The server process, killed and reaped on every path
// ---------------------------------------------------------------------------------------------

/// A `latchkey serve` child of this test, so the test holds its pid and can SIGKILL it.
struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Serve {
    /// Starts `latchkey serve --bind BIND` on `db` and waits until it listens. A restart binds
    /// the address of the server it replaces: the issuer (`http://<bound address>`) is in every
    /// access token, so a restart on another port would refuse them all.
    fn start(db: &Db, bind: &str) -> Serve {
        let mut cmd = db.command(&["serve", "--bind", bind]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn latchkey serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        // Drains stderr until the process ends, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut serve = Serve {
            child,
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("latchkey is listening") => {
                    serve.base = format!("http://{}", address_field(&line));
                    return serve;
                }
                Ok(line) => seen.push(line),
                Err(e) => panic!("serve did not start listening ({e:?}); stderr: {seen:?}"),
            }
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then the exit status.
    fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for serve")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:PORT` from the `address=` field of the "listening" line.
fn address_field(line: &str) -> String {
    let start = line
        .find("address=")
        .unwrap_or_else(|| panic!("no address= in {line:?}"))
        + "address=".len();
    line[start..]
        .trim_start_matches('"')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The client's side: requests that may fail, and what was received
// ---------------------------------------------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// A token request; `None` when no complete answer arrived (the server died).
async fn post_token(
    http: &reqwest::Client,
    base: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> Option<(StatusCode, Value)> {
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .ok()?;
    let status = response.status();
    let body = response.text().await.ok()?;
    Some((
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    ))
}

async fn exchange_code(
    http: &reqwest::Client,
    base: &str,
    client: &TestClient,
    (code, verifier): &(String, String),
) -> Option<(StatusCode, Value)> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    post_token(http, base, client, &form).await
}

async fn refresh_token(
    http: &reqwest::Client,
    base: &str,
    client: &TestClient,
    token: &str,
) -> Option<(StatusCode, Value)> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    post_token(http, base, client, &form).await
}

/// Tokens from one 200 answer.
#[derive(Clone, Debug)]
struct Issued {
    access: String,
    refresh: String,
    /// The access token's `grant_id` claim.
    grant_id: String,
    origin: String,
}

fn issued(body: &Value, origin: String) -> Issued {
    let field = |name: &str| {
        body[name]
            .as_str()
            .unwrap_or_else(|| panic!("{origin}: a 200 answer without {name}: {body}"))
            .to_owned()
    };
    let access = field("access_token");
    let refresh = field("refresh_token");
    let grant_id = grant_id_claim(&access);
    Issued {
        access,
        refresh,
        grant_id,
        origin,
    }
}

/// The `grant_id` claim of a JWT, read without verifying it (the server verifies at userinfo).
fn grant_id_claim(jwt: &str) -> String {
    let claims = jwt_claims(jwt);
    claims["grant_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no grant_id claim in {claims}"))
        .to_owned()
}

enum Sent {
    Code(usize),
    Refresh(String),
}

/// One request of the crash phase and its answer, if one arrived.
struct Event {
    sent: Sent,
    reply: Option<(StatusCode, Value)>,
}

/// What the client did and got in one cycle.
struct Ledger {
    codes: Vec<(String, String)>,
    /// 200 answers per code, over every attempt.
    successes: Vec<usize>,
    /// The grant named by a code's 200 answer.
    code_grant: HashMap<usize, String>,
    issued: Vec<Issued>,
    /// Refresh tokens the client presented (so spending them was the client's doing).
    presented: HashSet<String>,
}

impl Ledger {
    fn record(&mut self, event: Event) {
        let origin = match &event.sent {
            Sent::Code(i) => format!("exchange of code {i}"),
            Sent::Refresh(_) => "refresh".to_owned(),
        };
        if let Sent::Refresh(token) = &event.sent {
            self.presented.insert(token.clone());
        }
        let Some((status, body)) = event.reply else {
            return;
        };
        if status != StatusCode::OK {
            // Concurrency alone may refuse a twin (a replay), never fail otherwise.
            assert!(
                status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant",
                "{origin}: under concurrency the only refusal expected is 400 invalid_grant, \
                 got {status}: {body}"
            );
            return;
        }
        let tokens = issued(&body, origin);
        if let Sent::Code(i) = event.sent {
            self.successes[i] += 1;
            self.code_grant.insert(i, tokens.grant_id.clone());
        }
        self.issued.push(tokens);
    }
}

// ---------------------------------------------------------------------------------------------
// The database's side
// ---------------------------------------------------------------------------------------------

enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

macro_rules! fetch_all {
    ($pool:expr, $row:ty, $sql:expr) => {
        match $pool {
            Pool::Sqlite(p) => sqlx::query_as::<_, $row>($sql).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_as::<_, $row>($sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{}: {e}", $sql))
    };
}

async fn open(url: &str) -> Pool {
    match backend() {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .expect("SQLite URL")
                .busy_timeout(Duration::from_secs(10));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("open the SQLite file");
            Pool::Sqlite(pool)
        }
        Backend::Postgres => Pool::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .expect("connect to PostgreSQL"),
        ),
    }
}

async fn close(pool: Pool) {
    match pool {
        Pool::Sqlite(p) => p.close().await,
        Pool::Postgres(p) => p.close().await,
    }
}

/// `PRAGMA integrity_check` on the SQLite file (nothing to check on PostgreSQL).
async fn assert_integrity(url: &str, when: &str) {
    let pool = open(url).await;
    if let Pool::Sqlite(p) = &pool {
        let report: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(p)
            .await
            .unwrap_or_else(|e| panic!("{when}: PRAGMA integrity_check failed: {e}"));
        assert_eq!(
            report,
            vec!["ok".to_owned()],
            "{when}: PRAGMA integrity_check"
        );
    }
    close(pool).await;
}

/// The rows the invariants are about.
struct Snapshot {
    /// code_hash → (grant_id, used).
    codes: HashMap<Vec<u8>, (String, bool)>,
    /// grant id → revoked.
    grants: HashMap<String, bool>,
    /// token_hash → (grant_id, used).
    refresh: HashMap<Vec<u8>, (String, bool)>,
}

impl Snapshot {
    async fn take(url: &str) -> Snapshot {
        let pool = open(url).await;
        let codes = fetch_all!(
            &pool,
            (Vec<u8>, String, Option<i64>),
            "SELECT code_hash, grant_id, used_at FROM authorization_codes"
        );
        let grants = fetch_all!(
            &pool,
            (String, Option<i64>),
            "SELECT id, revoked_at FROM grants"
        );
        let refresh = fetch_all!(
            &pool,
            (Vec<u8>, String, Option<i64>),
            "SELECT token_hash, grant_id, used_at FROM refresh_tokens"
        );
        close(pool).await;
        Snapshot {
            codes: codes
                .into_iter()
                .map(|(hash, grant, used)| (hash, (grant, used.is_some())))
                .collect(),
            grants: grants
                .into_iter()
                .map(|(id, revoked)| (id, revoked.is_some()))
                .collect(),
            refresh: refresh
                .into_iter()
                .map(|(hash, grant, used)| (hash, (grant, used.is_some())))
                .collect(),
        }
    }

    fn code(&self, code: &str) -> &(String, bool) {
        self.codes
            .get(&latchkey::crypto::token_hash(code))
            .expect("every minted code is stored")
    }

    fn revoked(&self, grant_id: &str) -> bool {
        self.grants[grant_id]
    }

    /// The refresh token's row, if stored.
    fn refresh_row(&self, token: &str) -> Option<&(String, bool)> {
        self.refresh.get(&latchkey::crypto::token_hash(token))
    }

    /// A token that refreshes now: stored, unused, its grant not revoked.
    fn live(&self, token: &str) -> bool {
        self.refresh_row(token)
            .is_some_and(|(grant, used)| !used && !self.revoked(grant))
    }

    /// The invariants that hold of the whole database at any moment.
    fn assert_consistent(&self, when: &str) {
        // Codes and grants: a grant row exists exactly for each redeemed code, once (the code's
        // redemption and its grant are one transaction; no request here fails a check).
        let mut codes_per_grant: HashMap<&str, usize> = HashMap::new();
        for (grant, used) in self.codes.values() {
            *codes_per_grant.entry(grant).or_default() += 1;
            assert_eq!(
                *used,
                self.grants.contains_key(grant),
                "{when}: a code is redeemed (used_at set) exactly when its grant {grant} exists"
            );
        }
        for grant in self.grants.keys() {
            assert_eq!(
                codes_per_grant.get(grant.as_str()).copied().unwrap_or(0),
                1,
                "{when}: grant {grant} must come from exactly one code"
            );
        }
        // Refresh families: one live token while the grant lives, none once it is revoked.
        let mut live: HashMap<&str, usize> = HashMap::new();
        for (grant, used) in self.refresh.values() {
            assert!(
                self.grants.contains_key(grant),
                "{when}: refresh token of unknown grant {grant}"
            );
            if !used {
                *live.entry(grant).or_default() += 1;
            }
        }
        for (grant, &revoked) in &self.grants {
            let count = live.get(grant.as_str()).copied().unwrap_or(0);
            let expected = if revoked { 0 } else { 1 };
            assert_eq!(
                count, expected,
                "{when}: family {grant} (revoked: {revoked}) has {count} live refresh tokens"
            );
        }
    }

    /// What the client received against what is stored.
    fn assert_matches(&self, ledger: &Ledger, when: &str) {
        for (i, code) in ledger.codes.iter().enumerate() {
            if ledger.successes[i] == 0 {
                continue;
            }
            let (grant, used) = self.code(&code.0);
            assert!(used, "{when}: code {i} was answered 200 but is not spent");
            assert_eq!(
                Some(grant),
                ledger.code_grant.get(&i),
                "{when}: code {i}'s access token names another grant"
            );
        }
        for tokens in &ledger.issued {
            let origin = &tokens.origin;
            assert!(
                self.grants.contains_key(&tokens.grant_id),
                "{when}: {origin}: the client holds an access token of grant {} that is not \
                 stored",
                tokens.grant_id
            );
            let Some((grant, used)) = self.refresh_row(&tokens.refresh) else {
                panic!("{when}: {origin}: the client holds a refresh token that is not stored");
            };
            assert_eq!(
                grant, &tokens.grant_id,
                "{when}: {origin}: refresh and access token name different grants"
            );
            assert!(
                !used || self.revoked(grant) || ledger.presented.contains(&tokens.refresh),
                "{when}: {origin}: a refresh token the client never presented is spent while \
                 its grant {grant} is not revoked"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn o74_i54_sigkill_during_exchanges_and_refreshes_keeps_every_invariant() {
    let db = Db::new();
    let mut server = Serve::start(&db, "127.0.0.1:0");
    let client = {
        let app = TestApp::attach(server.base.clone(), &db.url).await;
        app.user("alice").await;
        app.client().await
    };
    for (cycle, kill_after) in KILL_AFTER.into_iter().enumerate() {
        let when = format!("cycle {cycle}");
        let ledger = crash(&db, &mut server, &client, kill_after, &when).await;
        assert_integrity(&db.url, &format!("{when}, after SIGKILL")).await;
        let address = server.base.trim_start_matches("http://").to_owned();
        server = Serve::start(&db, &address);
        assert_eq!(
            server.base,
            format!("http://{address}"),
            "the restart listens where the killed server did"
        );
        check_after_restart(&db, &server, &client, ledger, &when).await;
    }
    server.kill();
    assert_integrity(&db.url, "at the end").await;
}

/// Mints codes and refresh families, fires the concurrent requests, kills the server among
/// them, and returns what the client got.
async fn crash(
    db: &Db,
    server: &mut Serve,
    client: &TestClient,
    kill_after: usize,
    when: &str,
) -> Ledger {
    let base = server.base.clone();
    let app = TestApp::attach(base.clone(), &db.url).await;
    let browser = Browser::new();
    let mut codes = Vec::with_capacity(CODES);
    for _ in 0..CODES {
        codes.push(browser_flow(&app, &browser, client, "alice", "openid offline_access").await);
    }
    drop(app);
    let http = http();
    let mut ledger = Ledger {
        successes: vec![0; codes.len()],
        codes,
        code_grant: HashMap::new(),
        issued: Vec::new(),
        presented: HashSet::new(),
    };
    let families = TWIN_FAMILIES + CHAIN_FAMILIES;
    let mut starts = Vec::with_capacity(families);
    for i in 0..families {
        let reply = exchange_code(&http, &base, client, &ledger.codes[i]).await;
        assert!(
            matches!(&reply, Some((StatusCode::OK, _))),
            "{when}: exchange of code {i} before the crash: {reply:?}"
        );
        ledger.record(Event {
            sent: Sent::Code(i),
            reply,
        });
        starts.push(ledger.issued.last().expect("issued").refresh.clone());
    }

    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let spawn = |tasks: &mut Vec<tokio::task::JoinHandle<Vec<Event>>>, sent: Sent| {
        let (http, base, client, answered) =
            (http.clone(), base.clone(), client.clone(), answered.clone());
        let code = match &sent {
            Sent::Code(i) => Some(ledger.codes[*i].clone()),
            Sent::Refresh(_) => None,
        };
        tasks.push(tokio::spawn(async move {
            let reply = match (&sent, code) {
                (Sent::Code(_), Some(code)) => exchange_code(&http, &base, &client, &code).await,
                (Sent::Refresh(token), _) => refresh_token(&http, &base, &client, token).await,
                (Sent::Code(_), None) => unreachable!(),
            };
            answered.fetch_add(1, Ordering::SeqCst);
            vec![Event { sent, reply }]
        }));
    };
    for (i, start) in starts.iter().enumerate() {
        if i < TWIN_FAMILIES {
            spawn(&mut tasks, Sent::Refresh(start.clone()));
            spawn(&mut tasks, Sent::Refresh(start.clone()));
        }
    }
    for i in families..CODES {
        spawn(&mut tasks, Sent::Code(i));
        spawn(&mut tasks, Sent::Code(i));
    }
    for start in &starts[TWIN_FAMILIES..] {
        let (http, base, client, answered) =
            (http.clone(), base.clone(), client.clone(), answered.clone());
        let mut token = start.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = Vec::new();
            for _ in 0..CHAIN_LIMIT {
                let reply = refresh_token(&http, &base, &client, &token).await;
                answered.fetch_add(1, Ordering::SeqCst);
                let next = match &reply {
                    Some((StatusCode::OK, body)) => {
                        body["refresh_token"].as_str().map(str::to_owned)
                    }
                    _ => None,
                };
                events.push(Event {
                    sent: Sent::Refresh(token.clone()),
                    reply,
                });
                match next {
                    Some(next) => token = next,
                    None => break,
                }
            }
            events
        }));
    }

    // The kill: after `kill_after` answers (or 10 s, whichever comes first).
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::SeqCst) < kill_after && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let status = server.kill();
    assert_eq!(
        status.signal(),
        Some(9),
        "{when}: serve must still be running when SIGKILL comes, got {status}"
    );
    for task in tasks {
        for event in task.await.expect("request task") {
            ledger.record(event);
        }
    }
    ledger
}

/// On the restarted server: the database against the ledger, every token the client holds,
/// and a retry of every code.
async fn check_after_restart(
    db: &Db,
    server: &Serve,
    client: &TestClient,
    mut ledger: Ledger,
    when: &str,
) {
    let base = &server.base;
    let http = http();
    let after = format!("{when}, after the restart");
    let snapshot = Snapshot::take(&db.url).await;
    snapshot.assert_consistent(&after);
    snapshot.assert_matches(&ledger, &after);

    // (3) Every access token the client received works, unless its grant was revoked.
    for tokens in &ledger.issued {
        let answer = userinfo_at(&http, base, &tokens.access).await;
        if snapshot.revoked(&tokens.grant_id) {
            assert_ne!(
                answer,
                StatusCode::OK,
                "{after}: {}: an access token of revoked grant {} still works",
                tokens.origin,
                tokens.grant_id
            );
        } else {
            assert_eq!(
                answer,
                StatusCode::OK,
                "{after}: {}: an access token of live grant {} is refused",
                tokens.origin,
                tokens.grant_id
            );
        }
    }
    // Every refresh token the client received refreshes now, unless spent or revoked by a rule
    // (checked in `assert_matches`); live ones first, since presenting a spent one revokes its
    // family.
    let mut received: Vec<&Issued> = ledger.issued.iter().collect();
    received.sort_by_key(|t| !snapshot.live(&t.refresh));
    for tokens in received {
        let reply = refresh_token(&http, base, client, &tokens.refresh).await;
        let status = reply.as_ref().map(|(s, _)| *s);
        if snapshot.live(&tokens.refresh) {
            assert_eq!(
                status,
                Some(StatusCode::OK),
                "{after}: {}: a live refresh token must refresh: {reply:?}",
                tokens.origin
            );
        } else {
            assert_ne!(
                status,
                Some(StatusCode::OK),
                "{after}: {}: a spent refresh token (or one of a revoked grant) refreshed",
                tokens.origin
            );
        }
    }

    // (1) Each code once more: a code already spent is refused, an unspent one still works;
    // in all, at most one 200 per code.
    for (i, code) in ledger.codes.iter().enumerate() {
        let reply = exchange_code(&http, base, client, code).await;
        let status = reply.as_ref().map(|(s, _)| *s);
        if status == Some(StatusCode::OK) {
            ledger.successes[i] += 1;
        }
        let (_, used) = snapshot.code(&code.0);
        if *used {
            assert_ne!(
                status,
                Some(StatusCode::OK),
                "{after}: code {i} was spent before the restart and was redeemed again"
            );
        } else {
            assert_eq!(
                status,
                Some(StatusCode::OK),
                "{after}: code {i} was never redeemed and is refused: {reply:?}"
            );
        }
        assert!(
            ledger.successes[i] <= 1,
            "{after}: code {i} was answered 200 {} times",
            ledger.successes[i]
        );
    }
    let end = Snapshot::take(&db.url).await;
    end.assert_consistent(&format!("{when}, after the checks"));
    for (i, code) in ledger.codes.iter().enumerate() {
        assert!(end.code(&code.0).1, "{when}: code {i} is spent in the end");
    }
}

async fn userinfo_at(http: &reqwest::Client, base: &str, access_token: &str) -> StatusCode {
    http.get(format!("{base}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo on the restarted server")
        .status()
}
