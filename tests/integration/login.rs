//! Browser sign-in: a token buys an HttpOnly, SameSite=Strict cookie the API accepts; the
//! cookie dies with sign-out and with its token; cross-origin changes are refused.

use crate::common::TestApp;
use entry::auth::Role;

fn cookie_of(response: &reqwest::Response) -> Option<String> {
    response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn sign_in_with_a_token_then_use_the_cookie() {
    let app = TestApp::start().await;
    let http = reqwest::Client::new();
    let login = |token: &str| {
        http.post(format!("{}/api/v1/login", app.url())).json(&serde_json::json!({ "token": token })).send()
    };

    let refused = login("tkaaaaaaaaaa.nope").await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert!(cookie_of(&refused).is_none());

    let admin = app.token("root", Role::Admin, &["*"]).await;
    let signed_in = login(&admin).await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 200);
    let set_cookie = cookie_of(&signed_in).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(!cookie.contains(admin.split('.').nth(1).unwrap()), "the token itself went into the cookie");
    let body: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!((body["user"].as_str(), body["role"].as_str()), (Some("root"), Some("admin")));

    let with_cookie = |path: &str| http.get(format!("{}{path}", app.url())).header("cookie", cookie.clone()).send();
    assert_eq!(with_cookie("/api/v1/sessions").await.unwrap().status().as_u16(), 200);
    assert_eq!(with_cookie("/api/v1/tokens").await.unwrap().status().as_u16(), 200);

    // A change authenticated by cookie must come from the gateway's own origin.
    let missing = "01a22800-0000-7000-8000-000000000000";
    let kill = |origin: &str| {
        http.post(format!("{}/api/v1/sessions/{missing}/kill", app.url()))
            .header("cookie", cookie.clone())
            .header("origin", origin.to_owned())
            .send()
    };
    assert_eq!(kill("http://evil.example").await.unwrap().status().as_u16(), 403);
    assert_eq!(kill(&app.url()).await.unwrap().status().as_u16(), 404);

    // Signing out ends the cookie; a second sign-in dies with its revoked token.
    let out = http.post(format!("{}/api/v1/logout", app.url())).header("cookie", cookie.clone()).send().await.unwrap();
    assert_eq!(out.status().as_u16(), 204);
    assert!(cookie_of(&out).unwrap().contains("Max-Age=0"));
    assert_eq!(with_cookie("/api/v1/sessions").await.unwrap().status().as_u16(), 401);
    let again = login(&admin).await.unwrap();
    let cookie = cookie_of(&again).unwrap().split(';').next().unwrap().to_owned();
    assert!(app.store.revoke_token(admin.split('.').next().unwrap()).await.unwrap());
    let after = http.get(format!("{}/api/v1/sessions", app.url())).header("cookie", cookie).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 401);
}
