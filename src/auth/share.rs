//! Share links: the secret that opens one finished session's replay for someone without an
//! account, and its check.
//!
//! A link's secret reads `<id>.<secret>` like an access token's, with ids `sh` + 10 base32
//! characters (a token's are `tk…`), so neither is ever taken for the other: the token check
//! refuses `sh…` ids and this one refuses `tk…` ids. The secret is 32 random bytes (base64url);
//! only its SHA-256 is stored, and compared in constant time. It is presented only as
//! `Authorization: Share <id>.<secret>`.
//!
//! Guarantees: a link opens its session only while it is unrevoked, unexpired, and the token it
//! was created with is still usable (revoking that token ends what it gave out); every refusal
//! is the same [`AuthError::InvalidToken`] (or `MissingToken`), so a caller never learns which
//! check failed; `Debug` of a [`ShareSecret`] hides the secret.

use super::token::{is_id, matches_sha256, random_id, random_secret, sha256_hash, split_secret};
use super::{AuthError, Authenticator, failures};
use crate::store::{NewShare, ShareRow, StoreError, now_millis};

/// How a share link's id begins.
const ID_PREFIX: &str = "sh";
/// The `Authorization` scheme a share link is presented with.
pub const SHARE_SCHEME: &str = "Share";

/// A share link's secret as its holder presents it.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareSecret {
    id: String,
    secret: String,
}

impl std::fmt::Debug for ShareSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShareSecret({}.***)", self.id)
    }
}

impl ShareSecret {
    /// A fresh random link secret.
    pub fn generate() -> Self {
        Self { id: random_id(ID_PREFIX), secret: random_secret() }
    }

    /// `<id>.<secret>` split; `None` when it is not a share link's.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, secret) = split_secret(text, ID_PREFIX)?;
        Some(Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    /// The secret of an `Authorization` header value `Share <id>.<secret>` (the scheme in any
    /// case); `None` for any other scheme or form.
    pub fn from_authorization(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case(SHARE_SCHEME) {
            return None;
        }
        Self::parse(rest)
    }

    /// Whether `text` is a share link's id (`sh` and 10 base32 characters).
    pub fn is_id(text: &str) -> bool {
        is_id(text, ID_PREFIX)
    }

    /// The public part: the link's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The whole secret, to show once to the link's creator.
    pub fn reveal(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The hash to store.
    pub fn hash(&self) -> String {
        sha256_hash(&self.secret)
    }

    /// Whether the secret matches a stored hash.
    pub fn verify(&self, hash: &str) -> bool {
        matches_sha256(&self.secret, hash)
    }
}

/// What a new share link gives.
#[derive(Debug, Clone)]
pub struct ShareGrant<'a> {
    pub session_id: &'a str,
    pub created_by: &'a str,
    pub created_by_token: Option<&'a str>,
    pub expires_at: i64,
    pub until_ms: Option<i64>,
}

impl Authenticator {
    /// Creates a share link; returns its secret (the only time it exists outside the link's
    /// holder) and its row.
    pub async fn create_share(&self, grant: &ShareGrant<'_>) -> Result<(ShareSecret, ShareRow), StoreError> {
        let secret = ShareSecret::generate();
        let hash = secret.hash();
        let new = NewShare {
            id: secret.id(),
            secret_hash: &hash,
            session_id: grant.session_id,
            created_by: grant.created_by,
            created_by_token: grant.created_by_token,
            expires_at: grant.expires_at,
            until_ms: grant.until_ms,
        };
        self.store.insert_share(new).await?;
        let row = self.store.share(secret.id()).await?;
        let row = row.ok_or_else(|| StoreError::Corrupt(format!("share link {} vanished", secret.id())))?;
        Ok((secret, row))
    }

    /// The share link an `Authorization` header value (`Share <id>.<secret>`) presents, if it
    /// opens its session now.
    pub async fn authenticate_share(&self, authorization: Option<&str>) -> Result<ShareRow, AuthError> {
        failures::counted(self.share_of(authorization).await)
    }

    async fn share_of(&self, authorization: Option<&str>) -> Result<ShareRow, AuthError> {
        let value = authorization.map(str::trim).filter(|v| !v.is_empty()).ok_or(AuthError::MissingToken)?;
        let secret = ShareSecret::from_authorization(value).ok_or(AuthError::InvalidToken)?;
        // The row is read every time: a revoked link is refused at once.
        let row = self.store.share(secret.id()).await?.ok_or(AuthError::InvalidToken)?;
        let now = now_millis();
        if !secret.verify(&row.secret_hash) || !row.open_at(now) {
            return Err(AuthError::InvalidToken);
        }
        if let Some(token_id) = &row.created_by_token {
            let usable = self.store.token(token_id).await?.is_some_and(|token| token.usable(now));
            if !usable {
                return Err(AuthError::InvalidToken);
            }
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Token;

    #[test]
    fn the_share_header_is_parsed_and_nothing_else_is_a_share() {
        let secret = ShareSecret::generate();
        let text = secret.reveal();
        assert!(text.starts_with("sh") && text.len() == 12 + 1 + 43, "{text}");
        for header in [format!("Share {text}"), format!("share {text}"), format!("SHARE  {text} ")] {
            assert_eq!(ShareSecret::from_authorization(&header), Some(secret.clone()), "{header}");
        }
        let token = Token::generate().reveal();
        let (id, _) = text.split_once('.').unwrap();
        for bad in [
            format!("Bearer {text}"),
            text.clone(),
            format!("Share {token}"),
            format!("Share{text}"),
            format!("Share {id}"),
            format!("Share {text}x"),
            format!("Share {}", &text[..text.len() - 1]),
            format!("Share {}", text.replace('.', ":")),
            format!("Share {text}/.."),
            format!("Sharer {text}"),
            String::new(),
        ] {
            assert!(ShareSecret::from_authorization(&bad).is_none(), "{bad:?}");
        }
        // A share link's secret is no access token, and a token no share link.
        assert!(Token::parse(&text).is_none());
        assert!(ShareSecret::parse(&token).is_none());
    }

    #[test]
    fn only_the_hash_is_kept_and_it_verifies_the_secret_alone() {
        let secret = ShareSecret::generate();
        let hash = secret.hash();
        assert!(hash.starts_with("$sha256$") && !hash.contains(&secret.secret));
        assert!(secret.verify(&hash));
        assert!(!ShareSecret::generate().verify(&hash));
        assert!(!secret.verify(&hash[..hash.len() - 1]));
        assert!(!format!("{secret:?}").contains(&secret.secret));
    }
}
