//! The browser's view: register, log in and out, upload from the page, the grid, the photo
//! page and its signed media URLs, CSRF, and privacy between users.
mod support;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use support::{
    body, csrf, hidden_value, image_sources, images, log_in, log_out, multipart, testdata, Part,
    TestApp,
};

const PW: &str = "pass-word-1";

async fn register(client: &Client, user: &str) {
    let token = csrf(client, "/register").await;
    let res = client
        .post("/register")
        .header(ContentType::Form)
        .body(format!("csrf={token}&username={user}&password={PW}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(res.headers().get_one("Location"), Some("/"));
}

async fn upload(client: &Client, name: &str, data: &[u8]) -> (Status, Option<String>, String) {
    let token = csrf(client, "/upload").await;
    let (ct, body) = multipart(&[Part::Text("csrf", &token), Part::File("file", name, data)]);
    let res = client
        .post("/upload")
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    let location = res.headers().get_one("Location").map(str::to_owned);
    (
        res.status(),
        location,
        res.into_string().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_new_user_registers_uploads_and_sees_thumbnail_original_and_annotated() {
    let app = TestApp::with(|c| c.processors = Some(0)).await;
    let c = &app.client;
    let landing = body(c.get("/").dispatch().await).await;
    assert!(landing.contains("Create an account"));

    register(c, "mia").await;
    let home = body(c.get("/").dispatch().await).await;
    assert!(
        home.contains("No photos yet") && home.contains("mia"),
        "{home}"
    );

    let photo = std::fs::read(testdata("photo000.jpg")).unwrap();
    let (status, location, _) = upload(c, "photo000.jpg", &photo).await;
    assert_eq!(status, Status::SeeOther);
    let location = location.unwrap();
    assert!(location.starts_with("/photos/"));

    // This worker only accepts: the photo waits in the backlog, and its pages say so.
    let page = body(c.get(location.clone()).dispatch().await).await;
    assert!(
        page.contains("Waiting to be processed") && page.contains(r#"http-equiv="refresh""#),
        "{page}"
    );
    assert_eq!(
        image_sources(&page).len(),
        1,
        "the original at once, the annotated copy once ready: {page}"
    );
    let home = body(c.get("/").dispatch().await).await;
    assert!(
        image_sources(&home).is_empty() && home.contains(r#"data-state="queued""#),
        "{home}"
    );
    // Another worker of the deployment processes it.
    let _processor = app.second_worker(|c| c.processors = None).await;
    app.settled().await;
    let page = body(c.get(location.clone()).dispatch().await).await;
    assert!(
        !page.contains("http-equiv"),
        "a processed photo's page stops refreshing: {page}"
    );

    let home = body(c.get("/").dispatch().await).await;
    let thumbs = image_sources(&home);
    assert_eq!(thumbs.len(), 1, "{home}");
    let thumb = c.get(thumbs[0].clone()).dispatch().await;
    assert_eq!(thumb.status(), Status::Ok);
    assert_eq!(thumb.content_type(), Some(ContentType::JPEG));
    let thumb = image::load_from_memory(&thumb.into_bytes().await.unwrap()).unwrap();
    assert_eq!(thumb.width().max(thumb.height()), 256);

    let page = body(c.get(location.clone()).dispatch().await).await;
    assert!(
        page.contains("photo000.jpg") && page.contains("1600×1200"),
        "{page}"
    );
    assert!(
        page.contains("found by text (PP-OCRv4 DBNet) on rten"),
        "which detector made the boxes: {page}"
    );
    let id = location.trim_start_matches("/photos/");
    assert_eq!(
        app.db.photo(id).await.unwrap().unwrap().runtime,
        "rten",
        "the runtime is recorded on its own"
    );
    let srcs = image_sources(&page);
    assert_eq!(srcs.len(), 2, "original and annotated: {page}");
    let original = c
        .get(srcs[0].clone())
        .dispatch()
        .await
        .into_bytes()
        .await
        .unwrap();
    assert_eq!(original, photo, "the original is served unchanged");
    let annotated = c
        .get(srcs[1].clone())
        .dispatch()
        .await
        .into_bytes()
        .await
        .unwrap();
    let annotated = image::load_from_memory(&annotated).unwrap().to_rgb8();
    assert_eq!(annotated.dimensions(), (1600, 1200));
    let red = annotated
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 90 && p[2] < 90)
        .count();
    assert!(
        red > 1000,
        "boxes are drawn on the annotated copy ({red} red pixels)"
    );
}

#[tokio::test]
async fn login_logout_and_wrong_password() {
    let app = TestApp::new().await;
    let c = &app.client;
    register(c, "nora").await;
    assert_eq!(log_out(c).await, Status::SeeOther);
    let res = c.get("/upload").dispatch().await;
    assert_eq!(
        (res.status(), res.headers().get_one("Location")),
        (Status::SeeOther, Some("/login"))
    );

    let token = csrf(c, "/login").await;
    let res = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!("csrf={token}&username=nora&password=nope-nope"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);
    let page = body(res).await;
    assert!(
        page.contains("wrong username or password") && page.contains("value=\"nora\""),
        "{page}"
    );

    assert_eq!(log_in(c, "nora", PW).await, Status::SeeOther);
    assert_eq!(c.get("/upload").dispatch().await.status(), Status::Ok);
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = TestApp::new().await;
    let c = &app.client;
    let res = c
        .post("/register")
        .header(ContentType::Form)
        .body(format!("csrf=forged&username=olga&password={PW}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);
    assert!(app.db.account_by_name("olga").await.unwrap().is_none());

    register(c, "olga").await;
    let (ct, body) = multipart(&[
        Part::Text("csrf", "forged"),
        Part::File("file", "a.jpg", &images::rgb_jpeg(32, 32)),
    ]);
    let res = c.post("/upload").header(ct).body(body).dispatch().await;
    assert_eq!(res.status(), Status::Forbidden);
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn page_upload_errors_are_shown_on_the_form() {
    let app = TestApp::new().await;
    register(&app.client, "pia").await;
    let (status, _, page) = upload(&app.client, "notes.jpg", b"hello").await;
    assert_eq!(status, Status::UnsupportedMediaType);
    assert!(
        page.contains("not an image") && page.contains("type=\"file\""),
        "{page}"
    );
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_page_upload_over_the_limit_is_refused_on_the_form_and_nothing_is_kept() {
    let app = TestApp::with(|c| c.max_upload_bytes = 1024 * 1024).await;
    register(&app.client, "pat").await;
    let oversize = vec![0xFFu8; 1024 * 1024 + 1];
    let (status, _, page) = upload(&app.client, "huge.jpg", &oversize).await;
    assert_eq!(status, Status::PayloadTooLarge);
    assert!(
        page.contains("1 MiB") && page.contains("type=\"file\""),
        "{page}"
    );
    app.assert_nothing_stored().await;
    // The same page still takes a photo within the limit.
    let (status, location, _) = upload(&app.client, "ok.jpg", &images::rgb_jpeg(64, 48)).await;
    assert_eq!(status, Status::SeeOther, "{location:?}");
    assert_eq!(app.db.count_rows().await.unwrap().photos, 1);
}

#[tokio::test]
async fn other_users_photos_do_not_exist_for_you_and_media_links_expire() {
    let app = TestApp::with(|c| c.media_url_ttl_secs = 600).await;
    let c = &app.client;
    register(c, "quinn").await;
    let (_, location, _) = upload(c, "q.jpg", &images::rgb_jpeg(120, 90)).await;
    let location = location.unwrap();
    let page = body(c.get(location.clone()).dispatch().await).await;
    let src = image_sources(&page)[0].clone();

    // Tampering with any part of a signed link is refused.
    let flipped = if src.ends_with('0') { '1' } else { '0' };
    let tampered_sig = format!("{}{flipped}", &src[..src.len() - 1]);
    let tampered_key = src.replacen("/media/photos/", "/media/annotated/", 1);
    let (path, query) = src.split_once('?').unwrap();
    let exp: u64 = query.split('&').next().unwrap()["exp=".len()..]
        .parse()
        .unwrap();
    let extended = src.replacen(&format!("exp={exp}"), &format!("exp={}", exp + 3600), 1);
    let expired = format!(
        "{path}?exp=1000&sig={}",
        app.client
            .rocket()
            .state::<gallery_server::AppState>()
            .unwrap()
            .signer
            .sign(&path["/media/".len()..], 1000)
    );
    for bad in [tampered_sig, tampered_key, extended, expired] {
        let res = c.get(bad.clone()).dispatch().await;
        assert_eq!(res.status(), Status::Forbidden, "{bad}");
    }
    assert_eq!(c.get(src).dispatch().await.status(), Status::Ok);

    // A second user, in a second browser (on another worker), gets 404 for the photo.
    let other = app.second_browser().await;
    register(&other, "rosa").await;
    let res = other.get(location.clone()).dispatch().await;
    assert_eq!(res.status(), Status::NotFound);
    assert!(body(res).await.contains("no such photo"));
}

#[tokio::test]
async fn media_is_served_in_ranges_as_asked() {
    let app = TestApp::new().await;
    let c = &app.client;
    register(c, "tess").await;
    let photo = std::fs::read(testdata("photo000.jpg")).unwrap();
    let (_, location, _) = upload(c, "photo000.jpg", &photo).await;
    let page = body(c.get(location.unwrap()).dispatch().await).await;
    let src = image_sources(&page)[0].clone();

    let whole = c.get(src.clone()).dispatch().await;
    assert_eq!(whole.status(), Status::Ok);
    assert_eq!(whole.headers().get_one("Accept-Ranges"), Some("bytes"));
    assert_eq!(
        whole.into_bytes().await.unwrap(),
        photo,
        "the original, byte for byte"
    );

    let size = photo.len();
    for (range, first, last) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (format!("bytes={}-", size - 10), size - 10, size - 1),
        ("bytes=-20".to_owned(), size - 20, size - 1),
        (format!("bytes=100-{}", size * 2), 100, size - 1),
    ] {
        let res = c
            .get(src.clone())
            .header(Header::new("Range", range.clone()))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::PartialContent, "{range}");
        assert_eq!(
            res.headers().get_one("Content-Range"),
            Some(format!("bytes {first}-{last}/{size}").as_str())
        );
        assert_eq!(
            res.into_bytes().await.unwrap(),
            &photo[first..=last],
            "{range}"
        );
    }
    let res = c
        .get(src)
        .header(Header::new("Range", format!("bytes={size}-")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::RangeNotSatisfiable);
    assert_eq!(
        res.headers().get_one("Content-Range"),
        Some(format!("bytes */{size}").as_str())
    );
}

#[tokio::test]
async fn the_grid_is_newest_first_and_paginated() {
    let app = TestApp::with(|c| c.page_size = 2).await;
    let c = &app.client;
    register(c, "sam").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, location, _) =
            upload(c, &format!("p{i}.jpg"), &images::rgb_jpeg(40 + i, 30)).await;
        assert_eq!(status, Status::SeeOther);
        ids.push(location.unwrap()["/photos/".len()..].to_string());
    }
    let first = body(c.get("/").dispatch().await).await;
    assert!(first.contains("Page 1 of 2"), "{first}");
    let pos = |html: &str, id: &str| html.find(&format!("/photos/{id}"));
    assert!(
        pos(&first, &ids[2]).unwrap() < pos(&first, &ids[1]).unwrap(),
        "newest first"
    );
    assert!(pos(&first, &ids[0]).is_none());
    let second = body(c.get("/?page=2").dispatch().await).await;
    assert!(pos(&second, &ids[0]).is_some() && pos(&second, &ids[2]).is_none());
}

#[tokio::test]
async fn an_owner_deletes_a_photo_and_its_files_and_nobody_else_can() {
    let app = TestApp::new().await;
    let c = &app.client;
    register(c, "tess").await;
    let (_, kept, _) = upload(c, "kept.jpg", &images::rgb_jpeg(120, 90)).await;
    let (_, gone, _) = upload(c, "gone.jpg", &images::rgb_jpeg(90, 120)).await;
    let (kept, gone) = (kept.unwrap(), gone.unwrap());
    app.settled().await;
    let gone_id = gone.trim_start_matches("/photos/").to_owned();
    let page = body(c.get(gone.clone()).dispatch().await).await;
    assert!(page.contains("Delete this photo"), "{page}");
    let token = hidden_value(&page, "csrf");
    let delete = format!("{gone}/delete");

    // Another user cannot delete it: to them it does not exist.
    let other = app.second_browser().await;
    register(&other, "uma").await;
    let their_token = csrf(&other, "/upload").await;
    let res = other
        .post(delete.clone())
        .header(ContentType::Form)
        .body(format!("csrf={their_token}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::NotFound);
    // Nor can a forged form.
    let res = c
        .post(delete.clone())
        .header(ContentType::Form)
        .body("csrf=forged")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(c.get(gone.clone()).dispatch().await.status(), Status::Ok);
    assert_eq!(
        app.store.list("").await.unwrap().len(),
        6,
        "two photos, three files each"
    );

    let res = c
        .post(delete.clone())
        .header(ContentType::Form)
        .body(format!("csrf={token}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(res.headers().get_one("Location"), Some("/"));
    assert_eq!(
        c.get(gone.clone()).dispatch().await.status(),
        Status::NotFound
    );
    let left: Vec<String> = app
        .store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(
        left.iter().all(|k| !k.contains(&gone_id)),
        "none of its files stay: {left:?}"
    );
    let home = body(c.get("/").dispatch().await).await;
    assert!(
        home.contains("1 photo") && image_sources(&home).len() == 1,
        "{home}"
    );
    assert_eq!(
        c.get(kept).dispatch().await.status(),
        Status::Ok,
        "the other photo stays"
    );
    // Deleting it again is a 404, not an error.
    let res = c
        .post(delete)
        .header(ContentType::Form)
        .body(format!("csrf={token}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::NotFound);
}

#[tokio::test]
async fn an_owner_deletes_their_account_with_their_password_and_everything_in_it_goes() {
    let app = TestApp::new().await;
    let c = &app.client;
    register(c, "vera").await;
    for name in ["a.jpg", "b.jpg"] {
        upload(c, name, &images::rgb_jpeg(100, 80)).await;
    }
    let other = app.second_browser().await;
    register(&other, "wren").await;
    let token = csrf(&other, "/upload").await;
    let (ct, body_) = multipart(&[
        Part::Text("csrf", &token),
        Part::File("file", "w.jpg", &images::rgb_jpeg(80, 100)),
    ]);
    assert_eq!(
        other
            .post("/upload")
            .header(ct)
            .body(body_)
            .dispatch()
            .await
            .status(),
        Status::SeeOther
    );
    app.settled().await;

    let page = body(c.get("/account").dispatch().await).await;
    assert!(
        page.contains("vera") && page.contains("2 photos") && page.contains("Delete my account"),
        "{page}"
    );
    let token = hidden_value(&page, "csrf");

    // The wrong password deletes nothing and says so.
    let res = c
        .post("/account/delete")
        .header(ContentType::Form)
        .body(format!("csrf={token}&password=not-mine-1"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert!(body(res).await.contains("nothing was deleted"));
    assert_eq!(app.store.list("").await.unwrap().len(), 9);

    let res = c
        .post("/account/delete")
        .header(ContentType::Form)
        .body(format!("csrf={token}&password={PW}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(app.db.account_by_name("vera").await.unwrap().is_none());
    assert_eq!(
        app.store.list("").await.unwrap().len(),
        3,
        "only the other user's three files stay"
    );
    assert_eq!(
        app.db.count_rows().await.unwrap(),
        common::db::RowCounts {
            accounts: 1,
            photos: 1
        }
    );
    // Logged out, and the account cannot be logged into any more.
    assert!(body(c.get("/").dispatch().await)
        .await
        .contains("Create an account"));
    let token = csrf(c, "/login").await;
    let res = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!("csrf={token}&username=vera&password={PW}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);
    // The other user is untouched.
    assert!(body(other.get("/").dispatch().await)
        .await
        .contains("1 photo"));
}
