//! Authentication and authorisation of everyone who enters.
//!
//! Guarantees, fail-closed: a request without a valid, unrevoked token (or a console's
//! explicit yes) is unauthorised; a valid one is checked against its role and container
//! patterns before any exec exists; auditors never enter; Entry never enters its own
//! container nor one labelled `entry.deny=true`, and enters a privileged container or one that
//! mounts the Docker socket only for a token with `allow_privileged`. Tokens are compared only
//! through their stored hashes, SHA-256 (argon2id for tokens of earlier versions, rehashed on
//! first use; a secret that passed is then remembered for a minute as a keyed SHA-256, see
//! `verified`).

mod failures;
mod policy;
mod share;
mod token;
mod verified;
mod webhook;

pub use failures::failures;
pub use policy::{PatternError, Patterns, Role};
pub use share::{SHARE_SCHEME, ShareGrant, ShareSecret};
pub use token::Token;
pub use webhook::{Webhook, WebhookDenial};

use crate::runtime::ContainerInfo;
use crate::store::{NewToken, Store, StoreError, TokenGrants, TokenRow};

/// The label that keeps Entry out of a container, whatever the token (value `true`).
pub const DENY_LABEL: &str = "entry.deny";

/// Who is asking, once authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// The store token's id; `None` for a console-vouched user.
    pub token_id: Option<String>,
    /// What the token may shape of an exec (a console-vouched user gets the defaults).
    pub grants: TokenGrants,
    patterns: Access,
}

#[derive(Debug, Clone)]
enum Access {
    Patterns(Patterns),
    /// The console allowed exactly the address it was asked about.
    ConsoleVouched,
}

/// Why a request was not let in. The `Display` text goes to the client, so it never
/// says more than the client may know.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unauthorised: no access token")]
    MissingToken,
    #[error("unauthorised: invalid, revoked or expired token")]
    InvalidToken,
    #[error("unauthorised: {0}")]
    Console(#[from] WebhookDenial),
    #[error("forbidden: role {0} may not enter containers")]
    RoleMayNotEnter(&'static str),
    #[error("forbidden: {user} may not enter {container}")]
    NotAllowed { user: String, container: String },
    #[error("forbidden: Entry does not enter its own container")]
    OwnContainer,
    #[error("forbidden: {0} is marked {DENY_LABEL}=true")]
    DenyLabel(String),
    #[error("forbidden: {0} is privileged (a token needs --allow-privileged)")]
    Privileged(String),
    #[error("forbidden: {0} mounts the Docker socket (a token needs --allow-privileged)")]
    DockerSocket(String),
    #[error("authorisation unavailable: {0}")]
    Store(#[from] StoreError),
}

/// Checks tokens against the store, then, for tokens the store does not know, the console.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    webhook: Option<Webhook>,
    verified: std::sync::Arc<verified::VerifiedTokens>,
}

impl Authenticator {
    pub fn new(store: Store, webhook: Option<Webhook>) -> Self {
        // One argon2id check per core at most: each takes 19 MiB and a core for ~30 ms.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        Self { store, webhook, verified: std::sync::Arc::new(verified::VerifiedTokens::new(cores)) }
    }

    /// Authenticates a presented token for a request to enter `address`: the store first,
    /// then (for tokens it does not know) the console.
    pub async fn authenticate(&self, presented: Option<&str>, address: &str) -> Result<Principal, AuthError> {
        failures::counted(self.authenticate_enter(presented, address).await)
    }

    async fn authenticate_enter(&self, presented: Option<&str>, address: &str) -> Result<Principal, AuthError> {
        let presented = presented.map(str::trim).filter(|t| !t.is_empty()).ok_or(AuthError::MissingToken)?;
        if let Some(principal) = self.stored_token(presented).await? {
            return Ok(principal);
        }
        // A share link's secret opens one replay, never a container: the console never sees it.
        if ShareSecret::parse(presented).is_some() {
            return Err(AuthError::InvalidToken);
        }
        let Some(webhook) = &self.webhook else { return Err(AuthError::InvalidToken) };
        let user = webhook.ask(presented, address).await?;
        Ok(Principal {
            user,
            role: Role::Developer,
            token_id: None,
            grants: TokenGrants::default(),
            patterns: Access::ConsoleVouched,
        })
    }

    /// Authenticates a store token (the HTTP API accepts no console-vouched users).
    pub async fn authenticate_token(&self, presented: Option<&str>) -> Result<Principal, AuthError> {
        failures::counted(self.token_principal(presented).await)
    }

    async fn token_principal(&self, presented: Option<&str>) -> Result<Principal, AuthError> {
        let presented = presented.map(str::trim).filter(|t| !t.is_empty()).ok_or(AuthError::MissingToken)?;
        self.stored_token(presented).await?.ok_or(AuthError::InvalidToken)
    }

    /// The principal behind a browser sign-in cookie (see [`Authenticator::sign_in`]).
    pub async fn authenticate_cookie(&self, secret: &str) -> Result<Principal, AuthError> {
        failures::counted(self.cookie_principal(secret).await)
    }

    async fn cookie_principal(&self, secret: &str) -> Result<Principal, AuthError> {
        let Some(token_id) = self.store.login_token(&login_id(secret)).await? else {
            return Err(AuthError::InvalidToken);
        };
        let row = self.store.token(&token_id).await?.ok_or(AuthError::InvalidToken)?;
        Principal::of_token(row)
    }

    /// Signs a browser in with a token: returns the cookie secret (shown only to that browser)
    /// and the principal. The sign-in lasts `lifetime` or until the token is revoked.
    pub async fn sign_in(
        &self,
        presented: &str,
        lifetime: std::time::Duration,
    ) -> Result<(String, Principal), AuthError> {
        let principal = self.authenticate_token(Some(presented)).await?;
        let token_id = principal.token_id.clone().ok_or(AuthError::InvalidToken)?;
        let secret = Token::generate().reveal();
        let expires_at = crate::store::now_millis() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        self.store.insert_login(&login_id(&secret), &token_id, expires_at).await?;
        Ok((secret, principal))
    }

    /// Ends a browser sign-in.
    pub async fn sign_out(&self, secret: &str) -> Result<(), AuthError> {
        Ok(self.store.delete_login(&login_id(secret)).await?)
    }

    /// The principal of a store token; `None` when the store does not know the token's id.
    async fn stored_token(&self, presented: &str) -> Result<Option<Principal>, AuthError> {
        let Some(token) = Token::parse(presented) else { return Ok(None) };
        // The row is read every time: a revoked token is refused at once, cached or not.
        let Some(row) = self.store.token(token.id()).await? else { return Ok(None) };
        let cached = self.verified.recently_verified(token.id(), token.secret(), &row.secret_hash);
        let slow = Token::is_slow_hash(&row.secret_hash);
        if !cached {
            let matched = if slow {
                let (hash, check) = (row.secret_hash.clone(), token.clone());
                self.verified.verify(move || check.verify(&hash)).await
            } else {
                token.verify(&row.secret_hash)
            };
            if !matched {
                return Err(AuthError::InvalidToken);
            }
        }
        if !row.usable(crate::store::now_millis()) {
            return Err(AuthError::InvalidToken);
        }
        if slow {
            // An argon2id hash of an earlier version: stored again as SHA-256 (only if the row
            // still holds the hash that matched), so later checks cost microseconds.
            match self.store.rehash_token(&row.id, &row.secret_hash, &token.hash()).await {
                Ok(true) => tracing::info!(token.id = %row.id, "token rehashed from argon2id to SHA-256"),
                Ok(false) => {}
                Err(error) => tracing::warn!(token.id = %row.id, %error, "could not rehash the token"),
            }
        }
        if !cached {
            self.verified.remember(token.id(), token.secret(), &row.secret_hash);
            // last_used_at is therefore exact to `verified::TTL`, not to the request.
            if let Err(error) = self.store.touch_token(&row.id).await {
                tracing::warn!(token.id = %row.id, %error, "could not record token use");
            }
        }
        Principal::of_token(row).map(Some)
    }

    /// Creates a token and returns it (the only time its secret exists outside the client).
    pub async fn create_token(
        &self,
        user: &str,
        role: Role,
        allow: &[String],
        grants: &TokenGrants,
        created_by: Option<&str>,
    ) -> Result<Token, CreateTokenError> {
        Patterns::new(allow)?;
        if user.trim().is_empty() || user.chars().any(char::is_control) {
            return Err(CreateTokenError::BadUser);
        }
        if let Some(bad) = grants.exec_users.iter().find(|u| !valid_exec_user(u)) {
            return Err(CreateTokenError::BadExecUser(bad.clone()));
        }
        if let Some(bad) = grants.env_allow.iter().flatten().find(|n| !valid_env_pattern(n)) {
            return Err(CreateTokenError::BadEnvName(bad.clone()));
        }
        let token = Token::generate();
        let secret_hash = token.hash();
        let new = NewToken {
            id: token.id(),
            user,
            role: role.as_str(),
            allow,
            secret_hash: &secret_hash,
            created_by,
            grants,
        };
        self.store.insert_token(new).await?;
        Ok(token)
    }
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTokenError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("user name must be non-empty printable text")]
    BadUser,
    #[error("bad exec user {0:?}: a user name or uid, optionally with :group, of letters, digits, '.', '_', '-'")]
    BadExecUser(String),
    #[error("bad environment name {0:?}: letters, digits and '_', optionally ending in '*'")]
    BadEnvName(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stored id of a sign-in: the SHA-256 of its cookie secret (a random 256-bit value, so a
/// fast hash suffices).
fn login_id(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// An exec user as `docker exec -u` takes it: `name`, `uid`, `name:group` or `uid:gid`.
fn valid_exec_user(user: &str) -> bool {
    let part =
        |p: &str| !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    match user.split_once(':') {
        Some((name, group)) => part(name) && part(group),
        None => part(user),
    }
}

/// An environment name, or a prefix glob such as `APP_*`.
fn valid_env_pattern(pattern: &str) -> bool {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

impl TokenRow {
    /// Whether this token may be used at `now`: not revoked and not expired.
    pub fn usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && !self.grants.expired(now)
    }
}

impl Principal {
    /// The principal of a stored token row, refused when revoked, expired or of an unknown role.
    fn of_token(row: TokenRow) -> Result<Self, AuthError> {
        if !row.usable(crate::store::now_millis()) {
            return Err(AuthError::InvalidToken);
        }
        let role = Role::parse(&row.role).ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            user: row.user,
            role,
            token_id: Some(row.id),
            grants: row.grants,
            patterns: Access::Patterns(Patterns::lenient(&row.allow)),
        })
    }

    /// Whether this principal may enter `container`. `own_id` is the container Entry runs in.
    ///
    /// Refused for everyone: Entry's own container and a container labelled
    /// `entry.deny=true`. Refused unless the token carries `allow_privileged`: a privileged
    /// container and one that mounts the Docker socket (as far as `container.hazards` knows:
    /// a listed container's `privileged` is unknown and not refused here).
    pub fn may_enter(&self, container: &ContainerInfo, own_id: Option<&str>) -> Result<(), AuthError> {
        match self.role {
            Role::Auditor => return Err(AuthError::RoleMayNotEnter("auditor")),
            Role::Developer | Role::Admin => {}
        }
        // The patterns first: a caller learns nothing more of a container outside them.
        let allowed = match &self.patterns {
            Access::Patterns(patterns) => patterns.allows(container),
            Access::ConsoleVouched => true,
        };
        if !allowed {
            return Err(AuthError::NotAllowed { user: self.user.clone(), container: container.name.clone() });
        }
        if own_id.is_some_and(|own| !own.is_empty() && container.id.starts_with(own)) {
            return Err(AuthError::OwnContainer);
        }
        if container.labels.get(DENY_LABEL).is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return Err(AuthError::DenyLabel(container.name.clone()));
        }
        if !self.grants.allow_privileged {
            if container.hazards.privileged {
                return Err(AuthError::Privileged(container.name.clone()));
            }
            if container.hazards.docker_socket {
                return Err(AuthError::DockerSocket(container.name.clone()));
            }
        }
        Ok(())
    }
}
