//! `POST /v1/auth/token` and bearer-token checks over HTTP, on both backends.

use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::{MASTER_KEY, TestApp, TestDb, access_tokens};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in TestDb::all() {
        test(TestApp::spawn(db).await).await;
    }
}

async fn token_response(
    request: reqwest::RequestBuilder,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_by_basic_form_and_json() {
    each_backend(|app| async move {
        let t = app.create_tenant("acme");
        let (id, secret) = app.create_key(&t, Role::Operator);
        let url = app.url("/v1/auth/token");

        let basic = app
            .client
            .post(&url)
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]);
        let (status, body, headers) = token_response(basic).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(headers["cache-control"], "no-store");
        let claims = access_tokens("k1", &[])
            .verify(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            (claims.tid.as_str(), claims.sub.as_str(), claims.role),
            (t.as_str(), id.as_str(), Role::Operator)
        );

        let in_form = app.client.post(&url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ]);
        assert_eq!(token_response(in_form).await.0, StatusCode::OK);

        let as_json = app.client.post(&url).json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        );
        assert_eq!(token_response(as_json).await.0, StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_are_refused_with_oauth_errors() {
    each_backend(|app| async move {
        let t = app.create_tenant("acme");
        let (id, secret) = app.create_key(&t, Role::Admin);
        let url = app.url("/v1/auth/token");
        let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
            (
                "wrong secret",
                app.client
                    .post(&url)
                    .basic_auth(&id, Some("assent_sk_nope"))
                    .form(&[("grant_type", "client_credentials")]),
                StatusCode::UNAUTHORIZED,
                "invalid_client",
            ),
            (
                "unknown client",
                app.client
                    .post(&url)
                    .basic_auth("nobody", Some(&secret))
                    .form(&[("grant_type", "client_credentials")]),
                StatusCode::UNAUTHORIZED,
                "invalid_client",
            ),
            (
                "no credentials",
                app.client
                    .post(&url)
                    .form(&[("grant_type", "client_credentials")]),
                StatusCode::UNAUTHORIZED,
                "invalid_client",
            ),
            (
                "password grant",
                app.client
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "password")]),
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
            ),
            (
                "no grant type",
                app.client
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("scope", "x")]),
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "two authentication methods",
                app.client.post(&url).basic_auth(&id, Some(&secret)).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ]),
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "malformed JSON",
                app.client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{\"grant_type\":"),
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
        ];
        for (what, request, status, error) in cases {
            let (got, body, headers) = token_response(request).await;
            assert_eq!(got, status, "{what} on {}: {body}", app.backend());
            assert_eq!(body["error"], error, "{what}");
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{what}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_gets_no_new_token() {
    each_backend(|app| async move {
        let t = app.create_tenant("acme");
        let (id, secret) = app.create_key(&t, Role::Admin);
        app.token(&id, &secret).await;
        app.store.revoke_client(&id).unwrap();
        let request = app
            .client
            .post(app.url("/v1/auth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]);
        let (status, body, _) = token_response(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client");
    })
    .await;
}

/// A revoked key's tokens stop at the next request, not when they expire: at once
/// when revoked through this process's API, within a second when revoked elsewhere
/// (the CLI or another instance writes the database directly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_keys_tokens_stop_working() {
    each_backend(|app| async move {
        let t = app.create_tenant("acme");
        let (admin_id, admin_secret) = app.create_key(&t, Role::Admin);
        let admin = app.token(&admin_id, &admin_secret).await;
        let (crm_id, crm_secret) = app.create_key(&t, Role::Operator);
        let crm = app.token(&crm_id, &crm_secret).await;
        app.bearer(&crm)
            .get("/v1/tenant")
            .expect(StatusCode::OK)
            .await;

        app.bearer(&admin)
            .request(Method::POST, &format!("/v1/api-keys/{crm_id}/revoke"))
            .expect(StatusCode::OK)
            .await;
        let body = app
            .bearer(&crm)
            .get("/v1/tenant")
            .expect(StatusCode::UNAUTHORIZED)
            .await;
        assert!(
            body["detail"].as_str().unwrap().contains("revoked"),
            "{body}"
        );

        // Revoked by another process: the admin's own key, from the store.
        app.store.revoke_client(&admin_id).unwrap();
        tokio::time::sleep(
            assent_api::revocation::ACTIVE_TTL + std::time::Duration::from_millis(100),
        )
        .await;
        app.bearer(&admin)
            .get("/v1/api-keys")
            .expect(StatusCode::UNAUTHORIZED)
            .await;
    })
    .await;
}

fn forge(header: Value, claims: Value, key: &[u8]) -> String {
    use hmac::Mac;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_every_kind_of_bad_token() {
    each_backend(|app| async move {
        let tenant = app.tenant_with("acme", Role::Admin).await;
        let key_k1 =
            assent_core::crypto::MasterKey::from_bytes(MASTER_KEY).derive("access-token", b"k1");
        let now = chrono::Utc::now().timestamp();
        // Tokens name a key that exists: a token of a missing key counts as revoked.
        let (client, _) = app.create_key(&tenant.id, Role::Admin);
        let claims = |aud: &str, iss: &str, nbf: i64, exp: i64, token_use: &str| {
            json!({"iss": iss, "aud": aud, "sub": client, "tid": tenant.id, "role": "admin",
                   "token_use": token_use, "jti": "j", "iat": now, "nbf": nbf, "exp": exp})
        };
        let header = |alg: &str, kid: &str| json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let good = forge(
            header("HS256", "k1"),
            claims("assent-api", "http://assent.test", now, now + 600, "access"),
            &key_k1,
        );
        let expired_at = now - 3600;
        let cases = [
            (
                "control: a correctly forged token passes",
                good.clone(),
                StatusCode::OK,
            ),
            (
                "alg none",
                {
                    let b64 = |v: Value| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
                    };
                    format!(
                        "{}.{}.",
                        b64(header("none", "k1")),
                        b64(claims(
                            "assent-api",
                            "http://assent.test",
                            now,
                            now + 600,
                            "access"
                        ))
                    )
                },
                StatusCode::UNAUTHORIZED,
            ),
            (
                "HS512",
                forge_hs512(
                    header("HS512", "k1"),
                    claims("assent-api", "http://assent.test", now, now + 600, "access"),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "wrong audience",
                forge(
                    header("HS256", "k1"),
                    claims("other-api", "http://assent.test", now, now + 600, "access"),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "wrong issuer",
                forge(
                    header("HS256", "k1"),
                    claims("assent-api", "http://evil.test", now, now + 600, "access"),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "expired",
                forge(
                    header("HS256", "k1"),
                    claims(
                        "assent-api",
                        "http://assent.test",
                        expired_at - 900,
                        expired_at,
                        "access",
                    ),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "not yet valid",
                forge(
                    header("HS256", "k1"),
                    claims(
                        "assent-api",
                        "http://assent.test",
                        now + 600,
                        now + 1200,
                        "access",
                    ),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "unknown kid",
                forge(
                    header("HS256", "k9"),
                    claims("assent-api", "http://assent.test", now, now + 600, "access"),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "another key",
                forge(
                    header("HS256", "k1"),
                    claims("assent-api", "http://assent.test", now, now + 600, "access"),
                    &[7; 32],
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "another token type",
                forge(
                    header("HS256", "k1"),
                    claims("assent-api", "http://assent.test", now, now + 600, "link"),
                    &key_k1,
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "garbage",
                "not.a.token".to_owned(),
                StatusCode::UNAUTHORIZED,
            ),
        ];
        for (what, token, expected) in cases {
            let (status, body) = app.bearer(&token).get("/v1/tenant").await.parts();
            assert_eq!(status, expected, "{what} on {}: {body}", app.backend());
            if expected == StatusCode::UNAUTHORIZED {
                assert_eq!(body["type"], "urn:assent:problem:unauthenticated", "{what}");
            }
        }
        let response = app.client.get(app.url("/v1/tenant")).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "no Authorization header"
        );
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    })
    .await;
}

fn forge_hs512(header: Value, claims: Value, key: &[u8]) -> String {
    use hmac::Mac;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_per_route() {
    each_backend(|app| async move {
        let admin = app.tenant_with("acme", Role::Admin).await;
        let body = json!({"role": "operator"});
        for role in [Role::PrivacyOfficer, Role::Operator, Role::Auditor] {
            let token = app.token_for(&admin, role).await;
            // The role may not create keys.
            app.bearer(&token)
                .post("/v1/api-keys", &body)
                .expect_problem(StatusCode::FORBIDDEN, "forbidden")
                .await;
            let (status, _) = app.bearer(&token).get("/v1/api-keys").await.parts();
            assert_eq!(status, StatusCode::OK, "{role} may list keys");
            let (status, _) = app.bearer(&token).get("/v1/tenant").await.parts();
            assert_eq!(status, StatusCode::OK, "{role} may read the tenant");
        }
        let (_, page) = admin.get("/v1/api-keys").await.parts();
        let victim = page["items"][0]["client_id"].as_str().unwrap().to_owned();
        let auditor = app.token_for(&admin, Role::Auditor).await;
        // An auditor may not revoke.
        app.bearer(&auditor)
            .request(Method::POST, &format!("/v1/api-keys/{victim}/revoke"))
            .expect(StatusCode::FORBIDDEN)
            .await;
        let (_, key) = admin.get(&format!("/v1/api-keys/{victim}")).await.parts();
        assert!(
            key["revoked_at"].is_null(),
            "a refused call changes nothing"
        );
        // 4 keys were made with the admin's; the refused creations added none.
        assert_eq!(page["items"].as_array().unwrap().len(), 4);
        admin
            .post("/v1/api-keys", &body)
            .expect(StatusCode::CREATED)
            .await;
    })
    .await;
}
