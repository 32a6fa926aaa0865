//! `GET /my`: the user's devices with their last backup, each a link into its folders.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use crate::db::UserDevice;
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, UserNav, url_encode, when};
use crate::web::session::UserPage;
use crate::web::{error::Fail, error::WebError, pages::html};

/// `GET /my`
pub(crate) async fn page(req: HttpRequest, user: UserPage) -> Result<HttpResponse, WebError> {
    let console = super::console(&req, &user)?;
    let db = console.res.db.clone();
    let id = user.user.id;
    let devices = web::block(move || db.user_devices_last(id))
        .await
        .map_err(|e| user.fail(Fail::from(e)))?
        .map_err(|e| user.fail(Fail::from(e)))?;
    let lang = user.lang;
    let body = html! {
        @if let Some(origin) = &user.info.origin {
            div.flash.ok role="status" data-testid="link-origin" {
                (tv(lang, Key::MyAdminLink, &[
                    ("admin", &origin.admin),
                    ("when", &when(origin.created_us)),
                ]))
            }
        }
        p { (t(lang, Key::MyIntro)) }
        @if devices.is_empty() {
            p.muted data-testid="my-no-devices" { (t(lang, Key::MyNoDevices)) }
        } @else {
            (layout::table("my-devices", html! {
                th { (t(lang, Key::ColDevice)) }
                th { (t(lang, Key::MyLastBackup)) }
                th { (t(lang, Key::ColLastRun)) }
                th {}
            }, html! {
                @for d in &devices { (row(lang, d)) }
            }))
        }
    };
    let title = t(lang, Key::MyTitle);
    Ok(html(layout::user_page(
        &user,
        UserNav::Devices,
        "/my",
        title,
        body,
    )))
}

fn row(lang: asgard_core::Lang, d: &UserDevice) -> maud::Markup {
    let success = d.last_success.as_ref().map_or(0, |r| r.finished_us);
    let last = d.last.as_ref().map_or(0, |r| r.finished_us);
    let href = format!("/my/browse?device={}", url_encode(&d.name));
    html! {
        tr data-testid={ "my-device-" (d.name) } {
            td { a href=(href) data-testid={ "browse-" (d.name) } { (d.name) } }
            td data-testid={ "my-last-backup-" (d.name) } {
                @if success > 0 { (when(success)) } @else { (t(lang, Key::Never)) }
            }
            td { @if last > 0 { (when(last)) } @else { (t(lang, Key::Never)) } }
            td { a href=(href) { (t(lang, Key::MyBrowse)) } }
        }
    }
}
