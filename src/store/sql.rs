//! The SQL both stores share. SQLite and PostgreSQL accept the same statements here (`$N`
//! placeholders, `RETURNING`, `ON CONFLICT`, `TRUE`/`FALSE`), so the `Store` implementation is
//! written once, as a macro instantiated for each backend's pool type; what differs (opening
//! the database, starting a write transaction, serialising key creation) stays in
//! `sqlite.rs` and `postgres.rs`. A generic implementation over `sqlx::Database` would need a
//! bound for every type in every query; the macro keeps each backend's code concrete.

/// Implements [`super::Store`] for `$store`, whose pools hold `$db` connections. `$store` must
/// be `Clone`, have a `writer` pool (every statement that changes data), a `reader` pool (the
/// rest), and provide `begin_write()`, `serialize_key_creation(&mut tx)` and
/// `on_writer(future)`, which runs the hot write transactions (code redemption, refresh
/// rotation) where that backend runs them best.
macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        mod sql_store_impl {
            use async_trait::async_trait;

            use crate::protocol::token::{CodeGrant, RefreshGrant};
            use crate::protocol::types::Scopes;
            use crate::store::rows::*;
            use crate::store::{
                UserClaims, ClientRecord, CodeCheck, CodeRedemption, ConsentRecord, NewAuthorizationCode, NewRefreshToken,
                PendingRequest, RefreshCheck, RefreshRotation, SessionRecord, SigningKeyRecord, Store, StoreError,
                KeyRetirement, PurgeReport, SigningKeyInfo, TABLES, UserRecord, FlowEvent,
            };
            use crate::protocol::types::SigningAlg;

            /// The hot write transactions, run by [`Store`] methods through `on_writer`.
            impl $store {
                async fn redeem_now(
                    &self,
                    code_hash: &[u8],
                    now: i64,
                    check: CodeCheck,
                    refresh: &NewRefreshToken,
                    issue_refresh: bool,
                ) -> Result<CodeRedemption, StoreError> {
                    let mut tx = self.begin_write().await?;
                    // The single-use rule, as one conditional write (RFC 6749 §4.1.2).
                    let row: Option<CodeRow> = sqlx::query_as(
                        "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL \
                         RETURNING grant_id, client_id, user_id, redirect_uri, code_challenge, scope, auth_time, expires_at, nonce",
                    )
                    .bind(now)
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        // RFC 6749 §4.1.2: "If an authorization code is used more than once, the
                        // authorization server MUST deny the request and SHOULD revoke (when possible) all
                        // tokens previously issued based on that authorization code."
                        let lookup = "SELECT grant_id FROM authorization_codes WHERE code_hash = $1";
                        let Some(grant_id) = revoke_on_reuse(&mut tx, lookup, code_hash, now).await? else {
                            return Ok(CodeRedemption::Unknown);
                        };
                        tx.commit().await?;
                        return Ok(CodeRedemption::Replayed { grant_id });
                    };
                    let grant = CodeGrant::try_from(row)?;
                    if let Err(rejection) = check(&grant) {
                        tx.commit().await?;
                        return Ok(CodeRedemption::Rejected { error: rejection, grant_id: grant.grant_id });
                    }
                    sqlx::query(
                        "INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&grant.grant_id)
                    .bind(&grant.client_id)
                    .bind(&grant.user_id)
                    .bind(grant.scope.to_string())
                    .bind(grant.auth_time)
                    .bind(now)
                    .bind(refresh.family_expires_at)
                    .execute(&mut *tx)
                    .await?;
                    if issue_refresh {
                        insert_refresh_token(&mut tx, refresh, &grant.grant_id, now).await?;
                    }
                    tx.commit().await?;
                    Ok(CodeRedemption::Issued(grant))
                }

                async fn rotate_now(
                    &self,
                    token_hash: &[u8],
                    now: i64,
                    check: RefreshCheck,
                    new: &NewRefreshToken,
                ) -> Result<RefreshRotation, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let spent: Option<(String, i64)> = sqlx::query_as(
                        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
                         RETURNING grant_id, created_at",
                    )
                    .bind(now)
                    .bind(token_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((grant_id, refreshed_at)) = spent else {
                        // RFC 9700 §4.14.2: on reuse, "the authorization server cannot determine which party
                        // submitted the invalid refresh token, it will revoke the active refresh token".
                        let lookup = "SELECT grant_id FROM refresh_tokens WHERE token_hash = $1";
                        let Some(grant_id) = revoke_on_reuse(&mut tx, lookup, token_hash, now).await? else {
                            return Ok(RefreshRotation::Unknown);
                        };
                        tx.commit().await?;
                        return Ok(RefreshRotation::Replayed { grant_id });
                    };
                    let sql = format!("{GRANT_SELECT} WHERE g.id = $1");
                    let row: Option<GrantRow> = sqlx::query_as(&sql)
                        .bind(&grant_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let grant = row
                        .map(RefreshGrant::try_from)
                        .transpose()?
                        .ok_or(StoreError::Corrupt("refresh_tokens.grant_id"))?;
                    let grant = RefreshGrant {
                        refreshed_at: Some(refreshed_at),
                        ..grant
                    };
                    let scope = match check(&grant) {
                        Ok(scope) => scope,
                        // Nothing changes: the token stays unspent for its rightful client.
                        Err(rejection) => {
                            return Ok(RefreshRotation::Rejected { error: rejection, grant_id: grant.grant_id })
                        }
                    };
                    insert_refresh_token(&mut tx, new, &grant.grant_id, now).await?;
                    tx.commit().await?;
                    Ok(RefreshRotation::Rotated { grant, scope })
                }
            }

            #[async_trait]
            impl Store for $store {
                async fn insert_client(&self, record: &ClientRecord) -> Result<(), StoreError> {
                    let c = &record.client;
                    let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                    sqlx::query(
                        "INSERT INTO clients (id, name, secret_hash, redirect_uris, scopes, grant_types, \
                         require_pkce, access_token_alg, audience, created_at, id_token_alg, post_logout_redirect_uris) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(&c.id)
                    .bind(&c.name)
                    .bind(&record.secret_hash)
                    .bind(serde_json::to_string(&c.redirect_uris).unwrap_or_default())
                    .bind(c.scopes.to_string())
                    .bind(grant_types.join(" "))
                    .bind(c.require_pkce)
                    .bind(c.access_token_alg.as_str())
                    .bind(&c.audience)
                    .bind(c.created_at)
                    .bind(c.id_token_alg.as_str())
                    .bind(serde_json::to_string(&c.post_logout_redirect_uris).unwrap_or_default())
                    .execute(&self.writer)
                    .await
                    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("client id already exists") } else { e.into() })?;
                    Ok(())
                }

                async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
                    if !crate::store::storable(id) {
                        return Ok(None);
                    }
                    let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1");
                    let row: Option<ClientRow> = sqlx::query_as(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?;
                    row.map(ClientRecord::try_from).transpose()
                }

                async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
                    let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, id");
                    let rows: Vec<ClientRow> = sqlx::query_as(&sql).fetch_all(&self.reader).await?;
                    rows.into_iter().map(ClientRecord::try_from).collect()
                }

                async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    // Codes carry no foreign key to grants, so their grants go first, explicitly.
                    sqlx::query("DELETE FROM grants WHERE client_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let done = sqlx::query("DELETE FROM clients WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE clients SET secret_hash = $1 WHERE id = $2 AND secret_hash IS NOT NULL",
                    )
                    .bind(secret_hash)
                    .bind(id)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO users (id, username, email, name, password_hash, disabled, created_at, \
                         email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&user.id)
                    .bind(&user.username)
                    .bind(&user.email)
                    .bind(&user.name)
                    .bind(&user.password_hash)
                    .bind(user.disabled)
                    .bind(user.created_at)
                    .bind(user.email_verified)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            StoreError::Conflict("username already exists")
                        } else {
                            e.into()
                        }
                    })?;
                    Ok(())
                }

                async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                    let row: Option<UserRow> = sqlx::query_as(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?;
                    Ok(row.map(UserRecord::from))
                }

                async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
                    if !crate::store::storable(username) {
                        return Ok(None);
                    }
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
                    let row: Option<UserRow> = sqlx::query_as(&sql)
                        .bind(username)
                        .fetch_optional(&self.reader)
                        .await?;
                    Ok(row.map(UserRecord::from))
                }

                async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, username");
                    let rows: Vec<UserRow> = sqlx::query_as(&sql).fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(UserRecord::from).collect())
                }

                async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    // Codes carry no foreign key to grants, so the user's grants go first.
                    sqlx::query("DELETE FROM grants WHERE user_id IN (SELECT id FROM users WHERE username = $1)")
                        .bind(username)
                        .execute(&mut *tx)
                        .await?;
                    let done = sqlx::query("DELETE FROM users WHERE username = $1")
                        .bind(username)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn set_password(
                    &self,
                    username: &str,
                    password_hash: &str,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let id: Option<String> = sqlx::query_scalar(
                        "UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id",
                    )
                    .bind(password_hash)
                    .bind(username)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(id) = id else { return Ok(false) };
                    end_sessions_and_grants(&mut tx, &id, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn disable_user(&self, username: &str, now: i64) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let id: Option<String> =
                        sqlx::query_scalar("UPDATE users SET disabled = TRUE WHERE username = $1 RETURNING id")
                            .bind(username)
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(id) = id else { return Ok(false) };
                    end_sessions_and_grants(&mut tx, &id, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                    let rows: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
                        "SELECT kid, alg, private_der, created_at FROM signing_keys WHERE retired_at IS NULL \
                         ORDER BY created_at, kid",
                    )
                    .fetch_all(&self.reader)
                    .await?;
                    rows.into_iter()
                        .map(|(kid, alg, private_der, created_at)| {
                            let alg = SigningAlg::parse(&alg).ok_or(StoreError::Corrupt("signing_keys.alg"))?;
                            Ok(SigningKeyRecord {
                                kid,
                                alg,
                                private_der,
                                created_at,
                            })
                        })
                        .collect()
                }

                async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    Self::serialize_key_creation(&mut tx).await?;
                    let done = sqlx::query(
                        "INSERT INTO signing_keys (kid, alg, private_der, created_at) SELECT $1, $2, $3, $4 \
                         WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND retired_at IS NULL)",
                    )
                    .bind(&key.kid)
                    .bind(key.alg.as_str())
                    .bind(&key.private_der)
                    .bind(key.created_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
                    sqlx::query("INSERT INTO signing_keys (kid, alg, private_der, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(&key.kid)
                        .bind(key.alg.as_str())
                        .bind(&key.private_der)
                        .bind(key.created_at)
                        .execute(&self.writer)
                        .await?;
                    Ok(())
                }

                async fn retire_signing_key(&self, kid: &str, now: i64) -> Result<KeyRetirement, StoreError> {
                    let mut tx = self.begin_write().await?;
                    Self::serialize_key_creation(&mut tx).await?;
                    let alg: Option<String> =
                        sqlx::query_scalar("SELECT alg FROM signing_keys WHERE kid = $1 AND retired_at IS NULL")
                            .bind(kid)
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(alg) = alg else { return Ok(KeyRetirement::Unknown) };
                    let live: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE alg = $1 AND retired_at IS NULL")
                            .bind(&alg)
                            .fetch_one(&mut *tx)
                            .await?;
                    if live <= 1 {
                        return Ok(KeyRetirement::LastOfAlgorithm);
                    }
                    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
                        .bind(now)
                        .bind(kid)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(KeyRetirement::Retired)
                }

                async fn signing_key_history(&self) -> Result<Vec<SigningKeyInfo>, StoreError> {
                    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
                        "SELECT kid, alg, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
                    )
                    .fetch_all(&self.reader)
                    .await?;
                    rows.into_iter()
                        .map(|(kid, alg, created_at, retired_at)| {
                            let alg = SigningAlg::parse(&alg).ok_or(StoreError::Corrupt("signing_keys.alg"))?;
                            Ok(SigningKeyInfo { kid, alg, created_at, retired_at })
                        })
                        .collect()
                }

                async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO sessions (id_hash, user_id, auth_time, expires_at, idle_expires_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&s.id_hash)
                    .bind(&s.user_id)
                    .bind(s.auth_time)
                    .bind(s.expires_at)
                    .bind(s.idle_expires_at)
                    .execute(&self.writer)
                    .await?;
                    Ok(())
                }

                async fn session(
                    &self,
                    id_hash: &[u8],
                    now: i64,
                    idle_expires_at: i64,
                ) -> Result<Option<SessionRecord>, StoreError> {
                    let row: Option<(String, i64, i64)> = sqlx::query_as(
                        "UPDATE sessions SET idle_expires_at = $1 WHERE id_hash = $2 AND expires_at > $3 AND idle_expires_at > $4 \
                         AND user_id IN (SELECT id FROM users WHERE disabled = FALSE) RETURNING user_id, auth_time, expires_at",
                    )
                    .bind(idle_expires_at)
                    .bind(id_hash)
                    .bind(now)
                    .bind(now)
                    .fetch_optional(&self.writer)
                    .await?;
                    Ok(row.map(|(user_id, auth_time, expires_at)| SessionRecord {
                        id_hash: id_hash.to_vec(),
                        user_id,
                        auth_time,
                        expires_at,
                        idle_expires_at,
                    }))
                }

                async fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                        .bind(id_hash)
                        .execute(&self.writer)
                        .await?;
                    Ok(())
                }

                async fn consents_of(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
                    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                        "SELECT c.client_id, k.name, c.scope, c.granted_at FROM consents c \
                         JOIN clients k ON k.id = c.client_id WHERE c.user_id = $1 ORDER BY k.name, c.client_id",
                    )
                    .bind(user_id)
                    .fetch_all(&self.reader)
                    .await?;
                    rows.into_iter()
                        .map(|(client_id, client_name, scope, granted_at)| {
                            let scope =
                                Scopes::parse(&scope).map_err(|_| StoreError::Corrupt("consents.scope"))?;
                            Ok(ConsentRecord {
                                client_id,
                                client_name,
                                scope,
                                granted_at,
                            })
                        })
                        .collect()
                }

                async fn revoke_consent(
                    &self,
                    user_id: &str,
                    client_id: &str,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                        .bind(user_id)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?;
                    let grants: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM grants WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(user_id)
                    .bind(client_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    for grant_id in &grants {
                        revoke_grant_in(&mut tx, grant_id, now).await?;
                    }
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn insert_pending_request(&self, p: &PendingRequest) -> Result<(), StoreError> {
                    let r = &p.request;
                    sqlx::query(
                        "INSERT INTO pending_requests (id_hash, browser_hash, client_id, redirect_uri, scope, state, \
                         code_challenge, prompt, user_id, auth_time, expires_at, nonce, max_age, login_hint) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(&p.id_hash)
                    .bind(&p.browser_hash)
                    .bind(&r.client_id)
                    .bind(&r.redirect_uri)
                    .bind(r.scope.to_string())
                    .bind(&r.state)
                    .bind(&r.code_challenge)
                    .bind(r.prompt.as_string())
                    .bind(&p.user_id)
                    .bind(p.auth_time)
                    .bind(p.expires_at)
                    .bind(&r.oidc.nonce)
                    .bind(r.oidc.max_age)
                    .bind(&r.oidc.login_hint)
                    .execute(&self.writer)
                    .await?;
                    Ok(())
                }

                async fn pending_request(
                    &self,
                    id_hash: &[u8],
                    now: i64,
                ) -> Result<Option<PendingRequest>, StoreError> {
                    let row: Option<PendingRow> = sqlx::query_as(
                        "SELECT id_hash, browser_hash, client_id, redirect_uri, scope, state, code_challenge, prompt, \
                         user_id, auth_time, expires_at, nonce, max_age, login_hint \
                         FROM pending_requests WHERE id_hash = $1 AND expires_at > $2",
                    )
                    .bind(id_hash)
                    .bind(now)
                    .fetch_optional(&self.reader)
                    .await?;
                    row.map(PendingRequest::try_from).transpose()
                }

                async fn record_login(
                    &self,
                    id_hash: &[u8],
                    user_id: &str,
                    auth_time: i64,
                ) -> Result<bool, StoreError> {
                    let done =
                        sqlx::query("UPDATE pending_requests SET user_id = $1, auth_time = $2 WHERE id_hash = $3")
                            .bind(user_id)
                            .bind(auth_time)
                            .bind(id_hash)
                            .execute(&self.writer)
                            .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn issue_authorization_code(
                    &self,
                    pending_id_hash: &[u8],
                    now: i64,
                    code: &NewAuthorizationCode,
                    consent: Option<&Scopes>,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let consumed =
                        sqlx::query("DELETE FROM pending_requests WHERE id_hash = $1 AND expires_at > $2")
                            .bind(pending_id_hash)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    if consumed.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let g = &code.grant;
                    if let Some(scope) = consent {
                        sqlx::query(
                            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                        )
                        .bind(&g.user_id)
                        .bind(&g.client_id)
                        .bind(scope.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "INSERT INTO authorization_codes (code_hash, grant_id, client_id, user_id, redirect_uri, \
                         code_challenge, scope, auth_time, expires_at, nonce) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(&code.code_hash)
                    .bind(&g.grant_id)
                    .bind(&g.client_id)
                    .bind(&g.user_id)
                    .bind(&g.redirect_uri)
                    .bind(&g.code_challenge)
                    .bind(g.scope.to_string())
                    .bind(g.auth_time)
                    .bind(g.expires_at)
                    .bind(&g.nonce)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn deny_pending_request(&self, id_hash: &[u8], now: i64) -> Result<bool, StoreError> {
                    let done = sqlx::query("DELETE FROM pending_requests WHERE id_hash = $1 AND expires_at > $2")
                        .bind(id_hash)
                        .bind(now)
                        .execute(&self.writer)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>, StoreError> {
                    let scope: Option<String> =
                        sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                            .bind(user_id)
                            .bind(client_id)
                            .fetch_optional(&self.reader)
                            .await?;
                    scope
                        .map(|s| Scopes::parse(&s).map_err(|_| StoreError::Corrupt("consents.scope")))
                        .transpose()
                }

                async fn redeem_authorization_code(
                    &self,
                    code_hash: &[u8],
                    now: i64,
                    check: CodeCheck,
                    refresh: &NewRefreshToken,
                    issue_refresh: bool,
                ) -> Result<CodeRedemption, StoreError> {
                    let (store, code_hash, refresh) = (self.clone(), code_hash.to_vec(), refresh.clone());
                    self.on_writer(async move {
                        store.redeem_now(&code_hash, now, check, &refresh, issue_refresh).await
                    })
                    .await
                }

                async fn rotate_refresh_token(
                    &self,
                    token_hash: &[u8],
                    now: i64,
                    check: RefreshCheck,
                    new: &NewRefreshToken,
                ) -> Result<RefreshRotation, StoreError> {
                    let (store, token_hash, new) = (self.clone(), token_hash.to_vec(), new.clone());
                    self.on_writer(async move { store.rotate_now(&token_hash, now, check, &new).await })
                        .await
                }

                async fn grant(&self, grant_id: &str) -> Result<Option<RefreshGrant>, StoreError> {
                    let sql = format!("{GRANT_SELECT} WHERE g.id = $1");
                    let row: Option<GrantRow> = sqlx::query_as(&sql)
                        .bind(grant_id)
                        .fetch_optional(&self.reader)
                        .await?;
                    row.map(RefreshGrant::try_from).transpose()
                }

                async fn refresh_token_grant(
                    &self,
                    token_hash: &[u8],
                ) -> Result<Option<RefreshGrant>, StoreError> {
                    let sql =
                        format!("{GRANT_WITH_REFRESH_SELECT} WHERE r.token_hash = $1 AND r.used_at IS NULL");
                    let row: Option<GrantRow> = sqlx::query_as(&sql)
                        .bind(token_hash)
                        .fetch_optional(&self.reader)
                        .await?;
                    row.map(RefreshGrant::try_from).transpose()
                }

                async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    revoke_grant_in(&mut tx, grant_id, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn set_user_claims(
                    &self,
                    username: &str,
                    claims: &UserClaims,
                ) -> Result<bool, StoreError> {
                    // One statement: an absent value keeps the claim, an empty one clears it.
                    let done = sqlx::query(
                        "UPDATE users SET name = NULLIF(COALESCE($1, name), ''), \
                         email = NULLIF(COALESCE($2, email), ''), \
                         email_verified = COALESCE($3, CASE WHEN $2 IS NOT NULL AND $2 <> COALESCE(email, '') \
                         THEN FALSE ELSE email_verified END) WHERE username = $4",
                    )
                    .bind(&claims.name)
                    .bind(&claims.email)
                    .bind(claims.email_verified)
                    .bind(username)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn revoke_refresh_token_grant(
                    &self,
                    token_hash: &[u8],
                    client_id: &str,
                    now: i64,
                ) -> Result<Option<String>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let grant_id: Option<String> = sqlx::query_scalar(
                        "SELECT r.grant_id FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                         WHERE r.token_hash = $1 AND g.client_id = $2",
                    )
                    .bind(token_hash)
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(grant_id) = &grant_id {
                        revoke_grant_in(&mut tx, grant_id, now).await?;
                    }
                    tx.commit().await?;
                    Ok(grant_id)
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1").execute(&self.reader).await?;
                    Ok(())
                }

                async fn append_flow_events(&self, events: &[FlowEvent]) -> Result<(), StoreError> {
                    if events.is_empty() {
                        return Ok(());
                    }
                    let events = events.to_vec();
                    let store = self.clone();
                    self.on_writer(async move {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO flow_events (at, request_id, flow, grant_id, event, detail) ",
                        );
                        insert.push_values(&events, |mut row, e| {
                            row.push_bind(e.at)
                                .push_bind(&e.request_id)
                                .push_bind(&e.flow)
                                .push_bind(&e.grant_id)
                                .push_bind(&e.event)
                                .push_bind(&e.detail);
                        });
                        insert.build().execute(&store.writer).await?;
                        Ok(())
                    })
                    .await
                }

                async fn flow_events(&self, request_id: &str) -> Result<Vec<FlowEvent>, StoreError> {
                    // The request's events name a flow and/or a grant; a flow's events name the
                    // grant it led to and a grant's events the flow that started it.
                    let events = sqlx::query_as(
                        "WITH seed AS (SELECT flow, grant_id FROM flow_events WHERE request_id = $1),                          flows AS (SELECT flow FROM seed WHERE flow IS NOT NULL                            UNION SELECT flow FROM flow_events WHERE flow IS NOT NULL                            AND grant_id IN (SELECT grant_id FROM seed WHERE grant_id IS NOT NULL)),                          grants AS (SELECT grant_id FROM seed WHERE grant_id IS NOT NULL                            UNION SELECT grant_id FROM flow_events WHERE grant_id IS NOT NULL                            AND flow IN (SELECT flow FROM flows))                          SELECT at, request_id, flow, grant_id, event, detail FROM flow_events                          WHERE request_id = $1 OR flow IN (SELECT flow FROM flows)                          OR grant_id IN (SELECT grant_id FROM grants) ORDER BY id",
                    )
                    .bind(request_id)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(events)
                }

                async fn purge_flow_events(&self, before: i64, keep: i64, batch: i64) -> Result<u64, StoreError> {
                    // The count cap in one range delete on the key, whatever the batch: a flood of
                    // refused requests must not outrun the clean-up.
                    let capped = sqlx::query(
                        "DELETE FROM flow_events WHERE id <= (SELECT MAX(id) FROM flow_events) - $1",
                    )
                    .bind(keep)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                    let aged = sqlx::query(
                        "DELETE FROM flow_events WHERE id IN (SELECT id FROM flow_events WHERE at <= $1 LIMIT $2)",
                    )
                    .bind(before)
                    .bind(batch)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                    Ok(capped + aged)
                }

                async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
                    let mut counts = Vec::with_capacity(TABLES.len());
                    for table in TABLES {
                        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                            .fetch_one(&self.reader)
                            .await?;
                        counts.push((table, count));
                    }
                    Ok(counts)
                }

                async fn acquire_lease(
                    &self,
                    name: &str,
                    holder: &str,
                    now: i64,
                    expires_at: i64,
                ) -> Result<bool, StoreError> {
                    let held: Option<String> = sqlx::query_scalar(
                        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                         WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder RETURNING holder",
                    )
                    .bind(name)
                    .bind(holder)
                    .bind(expires_at)
                    .bind(now)
                    .fetch_optional(&self.writer)
                    .await?;
                    Ok(held.is_some())
                }

                async fn purge_expired(&self, before: i64, retention: i64, batch: i64) -> Result<PurgeReport, StoreError> {
                    let old = before - retention;
                    let run = |sql: &'static str, cutoff: i64| {
                        sqlx::query(sql).bind(cutoff).bind(batch).execute(&self.writer)
                    };
                    let pending_requests = run(
                        "DELETE FROM pending_requests WHERE id_hash IN \
                         (SELECT id_hash FROM pending_requests WHERE expires_at <= $1 LIMIT $2)",
                        before,
                    )
                    .await?
                    .rows_affected();
                    let sessions = run(
                        "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions \
                         WHERE expires_at <= $1 OR idle_expires_at <= $1 LIMIT $2)",
                        before,
                    )
                    .await?
                    .rows_affected();
                    let authorization_codes = run(
                        "DELETE FROM authorization_codes WHERE code_hash IN \
                         (SELECT code_hash FROM authorization_codes WHERE expires_at <= $1 LIMIT $2)",
                        old,
                    )
                    .await?
                    .rows_affected();
                    // Refresh tokens go with their grant (ON DELETE CASCADE).
                    let grants = run(
                        "DELETE FROM grants WHERE id IN (SELECT id FROM grants \
                         WHERE expires_at <= $1 OR revoked_at <= $1 LIMIT $2)",
                        old,
                    )
                    .await?
                    .rows_affected();
                    Ok(PurgeReport { pending_requests, sessions, authorization_codes, grants, flow_events: 0 })
                }
                        }


            async fn insert_refresh_token(
                tx: &mut sqlx::Transaction<'_, $db>,
                token: &NewRefreshToken,
                grant_id: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ($1, $2, $3)")
                    .bind(&token.token_hash)
                    .bind(grant_id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// A spent code or refresh token presented again: revokes the grant it belongs to and
            /// returns its id; `None` when `lookup` (the artifact's grant by digest) finds nothing.
            async fn revoke_on_reuse(
                tx: &mut sqlx::Transaction<'_, $db>,
                lookup: &'static str,
                digest: &[u8],
                now: i64,
            ) -> Result<Option<String>, StoreError> {
                let grant_id: Option<String> =
                    sqlx::query_scalar(lookup).bind(digest).fetch_optional(&mut **tx).await?;
                if let Some(grant_id) = &grant_id {
                    revoke_grant_in(tx, grant_id, now).await?;
                }
                Ok(grant_id)
            }

            /// Marks the grant revoked and spends its refresh tokens, so no live token of the family is
            /// left (checklist item 52).
            async fn revoke_grant_in(tx: &mut sqlx::Transaction<'_, $db>, grant_id: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(grant_id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE grant_id = $2 AND used_at IS NULL")
                    .bind(now)
                    .bind(grant_id)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn end_sessions_and_grants(
                tx: &mut sqlx::Transaction<'_, $db>,
                user_id: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
                // Codes not yet redeemed would start a grant after the fact.
                sqlx::query("DELETE FROM authorization_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE used_at IS NULL AND grant_id IN (SELECT id FROM grants WHERE user_id = $2)",
                )
                .bind(now)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

        }
    };
}

pub(super) use sql_store;
