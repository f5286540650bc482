//! Share links in the store and their check, on SQLite and PostgreSQL: a link opens while it is
//! unrevoked, unexpired and its creator's token is usable, and is refused alike otherwise; rows
//! round-trip (with and without `until`), list newest first, revoke once.

use entry::auth::{AuthError, Authenticator, Role, ShareGrant, ShareSecret};
use entry::store::{TokenGrants, now_millis};

use crate::common::db::{Backend, TestDb};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )* }
    };
}

on_both_backends!(a_link_opens_only_while_it_and_its_creator_s_token_are_good);

const SESSION: &str = "0190a0b0-c0d0-7e0f-8000-000000000001";

async fn a_link_opens_only_while_it_and_its_creator_s_token_are_good(backend: Backend) {
    let db = TestDb::new(backend).await;
    let auth = Authenticator::new(db.store.clone(), None);
    let token = auth.create_token("audrey", Role::Auditor, &[], &TokenGrants::default(), None).await.unwrap();
    let grant = |expires_at: i64, until_ms: Option<i64>| ShareGrant {
        session_id: SESSION,
        created_by: "audrey",
        created_by_token: Some(token.id()),
        expires_at,
        until_ms,
    };
    let hour = now_millis() + 3_600_000;
    let (secret, row) = auth.create_share(&grant(hour, None)).await.unwrap();
    assert_eq!((row.session_id.as_str(), row.until_ms, row.revoked_at), (SESSION, None, None));
    assert!(row.secret_hash.starts_with("$sha256$"));
    let header = |secret: &ShareSecret| format!("Share {}", secret.reveal());
    assert_eq!(auth.authenticate_share(Some(&header(&secret))).await.unwrap().id, row.id);
    let (cut, cut_row) = auth.create_share(&grant(hour, Some(90_500))).await.unwrap();
    assert_eq!(cut_row.until_ms, Some(90_500));
    let (expired, _) = auth.create_share(&grant(now_millis() - 1, None)).await.unwrap();
    let refused = |result: Result<_, AuthError>| matches!(result, Err(AuthError::InvalidToken));
    assert!(refused(auth.authenticate_share(Some(&header(&expired))).await));
    assert!(matches!(auth.authenticate_share(None).await, Err(AuthError::MissingToken)));
    assert!(refused(auth.authenticate_share(Some(&format!("Bearer {}", secret.reveal()))).await));
    assert!(refused(auth.authenticate_share(Some(&format!("Share {}", token.reveal()))).await));

    let listed: Vec<String> = db.store.shares_of(SESSION).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed.len(), 3);
    assert!(db.store.shares_of("0190a0b0-c0d0-7e0f-8000-000000000002").await.unwrap().is_empty());

    // Revoked once, by whom; refused at once.
    assert!(db.store.revoke_share(&row.id, "root").await.unwrap());
    assert!(!db.store.revoke_share(&row.id, "root").await.unwrap());
    let revoked = db.store.share(&row.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_by.as_deref(), Some("root"));
    assert!(refused(auth.authenticate_share(Some(&header(&secret))).await));

    // The creator's token revoked: its links end too.
    assert!(auth.authenticate_share(Some(&header(&cut))).await.is_ok());
    assert!(db.store.revoke_token(token.id()).await.unwrap());
    assert!(refused(auth.authenticate_share(Some(&header(&cut))).await));

    db.store.delete_share(&cut_row.id).await.unwrap();
    assert!(db.store.share(&cut_row.id).await.unwrap().is_none());
}
