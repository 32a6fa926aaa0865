//! Getting in and out of the user's pages: the one-time link, the web password, logout.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::web::error::{Fail, WebError};
use crate::web::pages::login::CsrfOnly;
use crate::web::session::{UserForm, removal_cookie};

fn see_other(to: &str) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::SeeOther();
    b.insert_header((header::LOCATION, to.to_owned()));
    b
}

/// `POST /logout`: ends the user's session on the server and removes the cookie.
pub(crate) async fn logout(
    req: HttpRequest,
    UserForm(user, _): UserForm<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let console = super::console(&req, &user)?;
    let auth = console.auth.clone();
    let id = user.session.clone();
    web::block(move || auth.logout(&id))
        .await
        .map_err(|e| user.fail(Fail::from(e)))?;
    Ok(see_other("/login").cookie(removal_cookie()).finish())
}
