-- OpenID Connect: per-client ID token algorithm and post-logout redirect URIs, nonce and the request's OIDC parameters kept
-- with the pending request and the code, and whether a user's email address is verified.
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
-- RP-initiated logout 1.0: where the client may be sent after logout (JSON array).
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE pending_requests ADD COLUMN nonce TEXT;
ALTER TABLE pending_requests ADD COLUMN max_age BIGINT;
ALTER TABLE pending_requests ADD COLUMN login_hint TEXT;
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
