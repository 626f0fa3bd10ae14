//! Signing in under attack and signing out for good: wrong passwords are throttled per
//! client and account without locking the owner out, a flood of them costs bounded work,
//! sessions end when their owner says so, and names differing only by case are one account.
mod support;

use std::net::SocketAddr;

use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use support::{body, images, log_in, log_out, post_page_form, Part, TestApp};

const PW: &str = "pass-word-1";

fn from(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

/// An API upload of a small PNG from `client`; its status and `Retry-After`.
async fn upload_from(
    app: &TestApp,
    client: SocketAddr,
    user: &str,
    password: &str,
    extra: Option<Header<'static>>,
) -> (Status, Option<String>) {
    let png = images::png16();
    let (ct, body) = support::multipart(&[
        Part::Text("username", user),
        Part::Text("password", password),
        Part::File("file", "a.png", &png),
    ]);
    let mut req = app
        .client
        .post("/api/upload")
        .header(ct)
        .body(body)
        .remote(client);
    if let Some(h) = extra {
        req = req.header(h);
    }
    let res = req.dispatch().await;
    let retry = res.headers().get_one("Retry-After").map(str::to_owned);
    (res.status(), retry)
}

#[tokio::test]
async fn wrong_passwords_are_throttled_and_the_owner_still_gets_in() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("mara", PW).await.0, Status::Ok);
    let attacker = from("192.0.2.10");
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(upload_from(&app, attacker, "mara", &format!("guess-{i}-pw"), None).await);
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| s.0 == Status::Unauthorized)
        .count();
    let throttled: Vec<_> = statuses
        .iter()
        .filter(|s| s.0 == Status::TooManyRequests)
        .collect();
    assert_eq!(unauthorized, 5, "a few free tries: {statuses:?}");
    assert_eq!(throttled.len(), 7, "{statuses:?}");
    assert!(
        throttled.iter().all(|s| s.1.is_some()),
        "429 says when to retry"
    );

    // The attacker cannot choose another address with a header: the test client's peer is
    // not a trusted proxy.
    let spoofed = upload_from(
        &app,
        attacker,
        "mara",
        "guess-x-pw",
        Some(Header::new("X-Forwarded-For", "198.51.100.99")),
    )
    .await;
    assert_eq!(spoofed.0, Status::TooManyRequests);

    // The owner, from a client that has not been failing, gets in at once.
    let owner = upload_from(&app, from("203.0.113.5"), "mara", PW, None).await;
    assert_eq!(owner.0, Status::Ok, "the owner is not locked out");
    // The right password from the attacker's address still waits its turn.
    let res = upload_from(&app, attacker, "mara", PW, None).await;
    assert_eq!(res.0, Status::Ok, "the verified-credentials cache knows it");
}

#[tokio::test]
async fn through_a_trusted_proxy_the_forwarded_client_is_counted() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("rhea", PW).await.0, Status::Ok);
    let balancer = from("127.0.0.1");
    let xff = |ip: &'static str| Some(Header::new("X-Forwarded-For", ip));
    for i in 0..5 {
        let s = upload_from(
            &app,
            balancer,
            "rhea",
            &format!("wrong-{i}-pw"),
            xff("192.0.2.77"),
        )
        .await;
        assert_eq!(s.0, Status::Unauthorized);
    }
    let s = upload_from(&app, balancer, "rhea", "wrong-x-pw", xff("192.0.2.77")).await;
    assert_eq!(
        s.0,
        Status::TooManyRequests,
        "the client behind the balancer is throttled"
    );
    let s = upload_from(&app, balancer, "rhea", PW, xff("198.51.100.4")).await;
    assert_eq!(
        s.0,
        Status::Ok,
        "another client behind the same balancer is not"
    );
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_at_once_runs_only_the_free_tries() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("sola", PW).await.0, Status::Ok);
    let attacker = from("192.0.2.11");
    let burst = (0..60).map(|i| {
        let app = &app;
        async move {
            upload_from(app, attacker, "sola", &format!("burst-{i}-pw"), None)
                .await
                .0
        }
    });
    let statuses = futures::future::join_all(burst).await;
    let hashed = statuses
        .iter()
        .filter(|s| **s == Status::Unauthorized)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| [Status::TooManyRequests, Status::ServiceUnavailable].contains(s))
        .count();
    assert!(
        hashed <= 5,
        "at most the free tries reach the KDF: {statuses:?}"
    );
    assert_eq!(hashed + refused, 60, "{statuses:?}");
}

async fn can_upload_page(client: &Client) -> bool {
    client.get("/upload").dispatch().await.status() == Status::Ok
}

#[tokio::test]
async fn a_cookie_kept_from_before_logging_out_opens_nothing() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("tova", PW).await.0, Status::Ok);
    let c = &app.client;
    assert_eq!(log_in(c, "tova", PW).await, Status::SeeOther);
    let kept = c
        .cookies()
        .get("session")
        .expect("a session cookie")
        .clone();
    assert_eq!(log_out(c).await, Status::SeeOther);
    // Another client replays the cookie it copied.
    let thief = app.second_browser().await;
    let res = thief.get("/upload").cookie(kept).dispatch().await;
    assert_eq!(
        (res.status(), res.headers().get_one("Location")),
        (Status::SeeOther, Some("/login")),
        "the session ended on the server"
    );
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_browser() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("uma", PW).await.0, Status::Ok);
    let (here, there) = (&app.client, &app.second_browser().await);
    assert_eq!(log_in(here, "uma", PW).await, Status::SeeOther);
    assert_eq!(log_in(there, "uma", PW).await, Status::SeeOther);

    let change =
        |fields: &'static str| post_page_form(here, "/account", "/account/password", fields);
    let res = change("current=not-it-at-all&new=brand-new-pw").await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert!(body(res).await.contains("not your current password"));
    let res = change("current=pass-word-1&new=short").await;
    assert_eq!(res.status(), Status::BadRequest);
    assert!(body(res).await.contains("at least 8 characters"));
    let res = change("current=pass-word-1&new=brand-new-pw").await;
    assert_eq!(res.status(), Status::Ok);
    assert!(body(res).await.contains("Your password was changed"));
    assert!(can_upload_page(here).await, "this browser stays signed in");
    assert!(!can_upload_page(there).await, "the other one is signed out");

    let other_worker = app.second_browser().await;
    assert_eq!(log_in(&other_worker, "uma", PW).await, Status::Unauthorized);
    assert_eq!(
        log_in(&other_worker, "uma", "brand-new-pw").await,
        Status::SeeOther
    );
}

#[tokio::test]
async fn names_differing_only_by_case_are_one_account() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("Vera", PW).await.0, Status::Ok);
    let (status, text) = app.api_register("vera", "other-pass-1").await;
    assert_eq!(status, Status::Conflict, "{text}");
    assert!(text.contains("already taken"), "{text}");
    assert_eq!(log_in(&app.client, "VERA", PW).await, Status::SeeOther);
    let page = body(app.client.get("/account").dispatch().await).await;
    assert!(
        page.contains("<strong>Vera</strong>"),
        "shown as typed: {page}"
    );
}

#[tokio::test]
async fn a_load_generators_parallel_first_uploads_are_all_accepted() {
    // Room for one hash at a time and two waiting: without the shared check, 16 parallel
    // uploads would meet the queue's 503s and the pair's throttle.
    let app = TestApp::with(|c| {
        c.password_checks = 1;
        c.password_queue = 2;
    })
    .await;
    assert_eq!(app.api_register("wade", PW).await.0, Status::Ok);
    let client = from("192.0.2.50");
    let burst = (0..16).map(|_| {
        let app = &app;
        async move { upload_from(app, client, "wade", PW, None).await.0 }
    });
    let statuses = futures::future::join_all(burst).await;
    assert!(
        statuses.iter().all(|s| *s == Status::Ok),
        "one check serves them all, no throttle or queue refusal: {statuses:?}"
    );
}

#[tokio::test]
async fn a_password_changed_on_one_worker_stops_the_old_one_on_every_worker_at_once() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("xena", PW).await.0, Status::Ok);
    let other_worker = app.second_browser().await;
    let upload_to_other = |password: &'static str| {
        let png = images::png16();
        let (ct, body) = support::multipart(&[
            Part::Text("username", "xena"),
            Part::Text("password", password),
            Part::File("file", "a.png", &png),
        ]);
        let req = other_worker.post("/api/upload").header(ct).body(body);
        async move { req.dispatch().await.status() }
    };
    // The other worker remembers the password it has just checked.
    assert_eq!(upload_to_other(PW).await, Status::Ok);
    assert_eq!(log_in(&app.client, "xena", PW).await, Status::SeeOther);
    let res = post_page_form(
        &app.client,
        "/account",
        "/account/password",
        "current=pass-word-1&new=brand-new-pw",
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        upload_to_other(PW).await,
        Status::Unauthorized,
        "the old password no longer works there either"
    );
    assert_eq!(upload_to_other("brand-new-pw").await, Status::Ok);
}
