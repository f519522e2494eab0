//! Token attacks over the real API.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use samenloop::http::auth::{Claims, Role};
use serde_json::json;

fn claims(app: &TestApp) -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Claims {
        sub: "woonstad-system".into(),
        iss: app.cfg.auth.issuer.clone(),
        aud: app.cfg.auth.audience.clone(),
        exp: now + 600,
        nbf: now - 5,
        iat: now,
        org: "woonstad".into(),
        role: Role::Partner,
        networks: vec!["zorgnetwerk-noord".into()],
        obo: None,
        purpose: None,
    }
}

#[tokio::test]
async fn forged_and_invalid_tokens_are_refused() {
    let app = spawn_app().await;
    let path = "/v1/signals?network=zorgnetwerk-noord&reference=none";
    let good = app.token_with(claims(&app));
    assert_eq!(
        app.get(path, &good).await.status().as_u16(),
        404,
        "a valid token gets past authentication"
    );

    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"samenloop\""
    );
    expect_problem(r, 401, "unauthenticated").await;
    expect_problem(app.get(path, "garbage").await, 401, "invalid-token").await;

    let mut c = claims(&app);
    c.exp -= 3600;
    c.nbf -= 3600;
    expect_problem(
        app.get(path, &app.token_with(c)).await,
        401,
        "invalid-token",
    )
    .await;
    let mut c = claims(&app);
    c.nbf += 3600;
    expect_problem(
        app.get(path, &app.token_with(c)).await,
        401,
        "invalid-token",
    )
    .await;
    let mut c = claims(&app);
    c.aud = "other-service".into();
    expect_problem(
        app.get(path, &app.token_with(c)).await,
        401,
        "invalid-token",
    )
    .await;
    let mut c = claims(&app);
    c.iss = "https://evil.example".into();
    expect_problem(
        app.get(path, &app.token_with(c)).await,
        401,
        "invalid-token",
    )
    .await;

    // alg: none.
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "none", "typ": "JWT", "kid": "dev-es256"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims(&app)).unwrap());
    expect_problem(
        app.get(path, &format!("{header}.{payload}.")).await,
        401,
        "invalid-token",
    )
    .await;

    // HS256 with the public key as the secret.
    let pubkey = dev_file("jwt-es256.dev.pub.pem");
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some("dev-es256".into());
    let hs = jsonwebtoken::encode(
        &h,
        &claims(&app),
        &jsonwebtoken::EncodingKey::from_secret(&pubkey),
    )
    .unwrap();
    expect_problem(app.get(path, &hs).await, 401, "invalid-token").await;

    // Unknown kid; a kid whose pinned algorithm differs from the token's.
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("unknown".into());
    let parts: Vec<&str> = good.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&h).unwrap()),
        parts[1],
        parts[2]
    );
    expect_problem(app.get(path, &swapped).await, 401, "invalid-token").await;
    h.kid = Some("dev-eddsa".into());
    let swapped = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&h).unwrap()),
        parts[1],
        parts[2]
    );
    expect_problem(app.get(path, &swapped).await, 401, "invalid-token").await;

    // A tampered payload (another organisation) with the original signature.
    let mut c = claims(&app);
    c.org = "politie".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&c).unwrap()),
        parts[2]
    );
    expect_problem(app.get(path, &tampered).await, 401, "invalid-token").await;

    // EdDSA tokens work too.
    let ed = samenloop::http::auth::mint(&app.cfg, Some("dev-eddsa"), &claims(&app)).unwrap();
    assert_eq!(app.get(path, &ed).await.status().as_u16(), 404);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_problems_total{type=\"invalid-token\"} 10"),
        "{metrics}"
    );
}

#[tokio::test]
async fn health_endpoints_and_unknown_routes() {
    let app = spawn_app().await;
    let h = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status().as_u16(), 200);
    assert_eq!(
        h.version(),
        reqwest::Version::HTTP_2,
        "HTTP/2 is negotiated over TLS"
    );
    assert_eq!(
        app.client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let r = app
        .client
        .get(format!("{}/v1/nothing", app.base))
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "not-found").await;
}
