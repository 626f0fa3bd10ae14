//! Test harness: a fresh database per test on the MariaDB started by `scripts/test`, a
//! temporary data directory (or an S3 bucket), the real detector, and helpers to build
//! multipart bodies and odd images.
#![allow(dead_code)]
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use common::config::Config;
use common::db::Db;
use common::store::SharedStore;
use gallery_server::detect::{DbNetParams, Detector, TextDetector};
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

#[allow(unused_imports)] // each test binary uses its own share of them
pub use gallery_tests::{env, testdata};

pub fn detector() -> Arc<dyn Detector> {
    static DETECTOR: OnceLock<Arc<TextDetector>> = OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            Arc::new(
                TextDetector::load(
                    &PathBuf::from(env("GALLERY_MODEL_PATH")),
                    gallery_server::detect::Threads::ONE,
                    DbNetParams::default(),
                    &gallery_server::detect::Runtime::Rten,
                )
                .unwrap(),
            )
        })
        .clone()
}

pub struct TestApp {
    pub client: Client,
    pub db: Db,
    pub store: SharedStore,
    pub config: Config,
    _dir: tempfile::TempDir,
}

/// A database of its own, so tests run in parallel without seeing each other's rows.
async fn fresh_database() -> String {
    gallery_tests::fresh_database("t").await
}

pub fn base_config(dir: &std::path::Path) -> Config {
    Config {
        database_url: String::new(),
        data_dir: dir.join("data"),
        model_path: PathBuf::from(env("GALLERY_MODEL_PATH")),
        ..Config::default()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(dir.path());
        config.database_url = fresh_database().await;
        adjust(&mut config);
        let store = common::store::open(&config).await.unwrap();
        let db = Db::connect(&config.database_url).await.unwrap();
        let rocket = gallery_server::build(config.clone(), detector())
            .await
            .unwrap();
        let client = Client::tracked(rocket).await.unwrap();
        TestApp {
            client,
            db,
            store,
            config,
            _dir: dir,
        }
    }

    pub async fn s3() -> Self {
        let bucket = format!(
            "gallery-t{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        Self::with(|c| {
            c.store = Some(format!("s3://{bucket}/photos-of-test"));
            c.s3_endpoint = Some(env("GALLERY_TEST_S3_ENDPOINT"));
        })
        .await
    }

    /// Another browser, talking to another worker of the same deployment (same database,
    /// store and secret).
    pub async fn second_browser(&self) -> Client {
        self.second_worker(|_| {}).await
    }

    /// Another worker of the same deployment, configured by `adjust`.
    pub async fn second_worker(&self, adjust: impl FnOnce(&mut Config)) -> Client {
        let mut config = self.config.clone();
        adjust(&mut config);
        Client::tracked(gallery_server::build(config, detector()).await.unwrap())
            .await
            .unwrap()
    }

    /// Waits until every accepted photo has been processed (ready or failed).
    pub async fn settled(&self) {
        gallery_tests::wait_until(
            "the backlog to be processed",
            std::time::Duration::from_secs(60),
            || async { (self.db.backlog().await.unwrap().waiting() == 0).then_some(()) },
        )
        .await
    }

    /// Nothing in the store and no photo rows: what every refused upload must leave.
    pub async fn assert_nothing_stored(&self) {
        let objects = self.store.list("").await.unwrap();
        assert!(objects.is_empty(), "objects left behind: {objects:?}");
        assert_eq!(
            self.db.count_rows().await.unwrap().photos,
            0,
            "photo rows left behind"
        );
    }

    pub async fn api_register(&self, user: &str, password: &str) -> (Status, String) {
        let res = self
            .client
            .post("/api/register")
            .header(ContentType::Form)
            .body(format!("username={user}&password={password}"))
            .dispatch()
            .await;
        (res.status(), res.into_string().await.unwrap_or_default())
    }

    pub async fn api_upload(&self, parts: &[Part<'_>]) -> (Status, String) {
        let (ct, body) = multipart(parts);
        let res = self
            .client
            .post("/api/upload")
            .header(ct)
            .body(body)
            .dispatch()
            .await;
        (res.status(), res.into_string().await.unwrap_or_default())
    }

    pub async fn api_upload_json(&self, parts: &[Part<'_>]) -> (Status, serde_json::Value) {
        let (ct, body) = multipart(parts);
        let res = self
            .client
            .post("/api/upload")
            .header(ct)
            .header(Header::new("Accept", "application/json"))
            .body(body)
            .dispatch()
            .await;
        let status = res.status();
        (
            status,
            serde_json::from_str(&res.into_string().await.unwrap()).unwrap(),
        )
    }

    pub async fn upload_as(
        &self,
        user: &str,
        password: &str,
        name: &str,
        data: &[u8],
    ) -> (Status, String) {
        self.api_upload(&[
            Part::Text("username", user),
            Part::Text("password", password),
            Part::File("file", name, data),
        ])
        .await
    }
}

pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

pub fn multipart(parts: &[Part<'_>]) -> (ContentType, Vec<u8>) {
    let boundary = "----gallery-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(name, file_name, data) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        ContentType::new("multipart", "form-data").with_params(("boundary", boundary)),
        body,
    )
}

pub async fn body(res: LocalResponse<'_>) -> String {
    res.into_string().await.unwrap_or_default()
}

/// The CSRF token a page's forms carry for this browser.
pub async fn csrf(client: &Client, page: &str) -> String {
    hidden_value(&body(client.get(page).dispatch().await).await, "csrf")
}

/// Posts a form of the browser's pages with its CSRF token (taken from `page`).
pub async fn post_page_form<'c>(
    client: &'c Client,
    page: &str,
    action: &str,
    fields: &str,
) -> LocalResponse<'c> {
    let token = csrf(client, page).await;
    let sep = if fields.is_empty() { "" } else { "&" };
    client
        .post(action.to_owned())
        .header(ContentType::Form)
        .body(format!("csrf={token}{sep}{fields}"))
        .dispatch()
        .await
}

pub async fn log_in(client: &Client, user: &str, password: &str) -> Status {
    post_page_form(
        client,
        "/login",
        "/login",
        &format!("username={user}&password={password}"),
    )
    .await
    .status()
}

pub async fn log_out(client: &Client) -> Status {
    post_page_form(client, "/", "/logout", "").await.status()
}

/// The value of `name="…" value="…"` in a page, e.g. the CSRF token.
pub fn hidden_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// All `src="…"` attributes of `<img>` tags, HTML entities for `&` undone.
pub fn image_sources(html: &str) -> Vec<String> {
    html.match_indices("<img src=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

pub mod images {
    use image::{ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
    use std::io::Cursor;

    pub fn encode<P: image::PixelWithColorType, C: std::ops::Deref<Target = [P::Subpixel]>>(
        img: &ImageBuffer<P, C>,
        format: ImageFormat,
    ) -> Vec<u8>
    where
        [P::Subpixel]: image::EncodableLayout,
    {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    pub fn rgb_jpeg(w: u32, h: u32) -> Vec<u8> {
        encode(
            &ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128u8])),
            ImageFormat::Jpeg,
        )
    }

    pub fn gray_jpeg() -> Vec<u8> {
        encode(
            &ImageBuffer::from_fn(120, 80, |x, _| Luma([(x * 2) as u8])),
            ImageFormat::Jpeg,
        )
    }

    pub fn png16() -> Vec<u8> {
        encode(
            &ImageBuffer::from_fn(90, 60, |x, y| {
                Rgb([x as u16 * 700, y as u16 * 1000, 30000u16])
            }),
            ImageFormat::Png,
        )
    }

    pub fn alpha_png() -> Vec<u8> {
        encode(
            &ImageBuffer::from_fn(64, 48, |x, _| Rgba([200u8, 10, 10, (x * 4) as u8])),
            ImageFormat::Png,
        )
    }

    pub fn webp() -> Vec<u8> {
        encode(
            &ImageBuffer::from_fn(80, 50, |x, y| Rgba([x as u8, y as u8, 90u8, 255u8])),
            ImageFormat::WebP,
        )
    }

    pub fn cmyk_jpeg() -> Vec<u8> {
        let (w, h) = (64u16, 40u16);
        let data: Vec<u8> = (0..w as usize * h as usize)
            .flat_map(|i| [(i % 200) as u8, 40, 90, 10])
            .collect();
        let image = turbojpeg::Image {
            pixels: data.as_slice(),
            width: w as usize,
            pitch: 4 * w as usize,
            height: h as usize,
            format: turbojpeg::PixelFormat::CMYK,
        };
        turbojpeg::compress(image, 90, turbojpeg::Subsamp::None)
            .unwrap()
            .to_vec()
    }

    /// A JPEG `w`×`h` whose EXIF says "rotate 90° clockwise to display" (orientation 6).
    pub fn exif_rotated_jpeg(w: u32, h: u32) -> Vec<u8> {
        exif_rotated(rgb_jpeg(w, h))
    }

    /// `jpeg` with an EXIF block saying "rotate 90° clockwise to display" (orientation 6).
    pub fn exif_rotated(jpeg: Vec<u8>) -> Vec<u8> {
        let tiff: [u8; 26] = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD at 8
            0, 1, // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation, SHORT, 1, value 6
            0, 0, 0, 0, // no next IFD
        ];
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    /// A valid PNG whose header claims `w`×`h` pixels (checksum fixed up), with no pixels.
    pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut png = encode(
            &ImageBuffer::from_pixel(4, 4, Rgb([0u8, 0, 0])),
            ImageFormat::Png,
        );
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }
}
