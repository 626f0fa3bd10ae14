//! What every page shares: the style, the layout with its header, and the error page that
//! `Error` renders for browsers.
use maud::{html, Markup, DOCTYPE};
use rocket::http::Status;

use crate::session::{CsrfToken, User};

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1.2rem;background:#1f2933;color:#fff}
header a,header button{color:#fff;text-decoration:none;background:none;border:0;font:inherit;cursor:pointer}
header .brand{font-weight:700;margin-right:auto}
main{max-width:1100px;margin:1.5rem auto;padding:0 1rem}
form.card{max-width:360px;display:flex;flex-direction:column;gap:.6rem;background:#fff;padding:1.2rem;border:1px solid #ddd;border-radius:6px}
input,button.primary{font:inherit;padding:.45rem}
button.primary{background:#2563eb;color:#fff;border:0;border-radius:4px;cursor:pointer}
.error{color:#b91c1c;background:#fee2e2;padding:.5rem .8rem;border-radius:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:.8rem}
.grid a{display:block;background:#fff;border:1px solid #ddd;border-radius:4px;padding:4px;text-align:center}
.grid img{max-width:100%;max-height:180px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.pair img{width:100%}
.meta{color:#555}.pager{display:flex;gap:1rem;margin:1rem 0}
.placeholder{display:flex;align-items:center;justify-content:center;height:140px;color:#555;background:#f1f5f9;font-size:.9rem}
.notice{color:#1e40af;background:#dbeafe;padding:.5rem .8rem;border-radius:4px}
button.danger{font:inherit;background:#fff;color:#b91c1c;border:1px solid #b91c1c;border-radius:4px;padding:.35rem .7rem;cursor:pointer}
"#;

pub fn layout(title: &str, user: Option<&User>, csrf: &CsrfToken, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gallery" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/" { "Gallery" }
                    @if let Some(u) = user {
                        a href="/upload" { "Upload" }
                        a href="/account" title="Your account" { (u.username) }
                        form method="post" action="/logout" style="margin:0" {
                            input type="hidden" name="csrf" value=(csrf.0);
                            button type="submit" { "Log out" }
                        }
                    } @else {
                        a href="/login" { "Log in" }
                        a href="/register" { "Register" }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn error_page(status: Status, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (status.code) " · Gallery" } style { (maud::PreEscaped(STYLE)) } }
            body {
                header { a.brand href="/" { "Gallery" } }
                main { h1 { (status.code) " " (status.reason().unwrap_or("")) } p.error { (message) } p { a href="/" { "Back to the gallery" } } }
            }
        }
    }
}
