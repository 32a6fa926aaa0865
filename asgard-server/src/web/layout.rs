//! The one layout of the console and its small components. Everything a test touches has a
//! stable `data-testid` (listed in the module docs of `web`).

use asgard_core::Lang;
use maud::{DOCTYPE, Markup, html};

use super::assets::css_url;
use super::i18n::{Key, code, t};
use super::session::{Admin, UserPage};

/// The entries of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Users,
    Devices,
    Runs,
    Maintenance,
    Audit,
}

const NAV: [(Nav, &str, Key, &str); 6] = [
    (Nav::Overview, "/admin", Key::NavOverview, "nav-overview"),
    (Nav::Users, "/admin/users", Key::NavUsers, "nav-users"),
    (
        Nav::Devices,
        "/admin/devices",
        Key::NavDevices,
        "nav-devices",
    ),
    (Nav::Runs, "/admin/runs", Key::NavRuns, "nav-runs"),
    (
        Nav::Maintenance,
        "/admin/maintenance",
        Key::NavMaintenance,
        "nav-maintenance",
    ),
    (Nav::Audit, "/admin/audit", Key::NavAudit, "nav-audit"),
];

/// `<head>` and the page's frame; `extra_head` e.g. a refresh while a job runs; `footer` names
/// the console or the users' side.
fn frame(
    lang: Lang,
    title: &str,
    extra_head: Markup,
    header: Markup,
    main: Markup,
    footer: Key,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(code(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – AsgardBackup" }
                link rel="stylesheet" href=(css_url());
                // No icon: without this link browsers ask for /favicon.ico (a 404 in the console).
                link rel="icon" href="data:,";
                (extra_head)
            }
            body {
                header.top { (header) }
                main data-testid="main" { h1 data-testid="page-title" { (title) } (main) }
                footer { (t(lang, footer)) " · " (env!("CARGO_PKG_VERSION")) }
            }
        }
    }
}

/// The language switch: links to `/admin/lang` (or `/lang` on the user's pages) that come back
/// to `back`.
fn lang_switch(lang: Lang, back: &str) -> Markup {
    let switch = if back.starts_with("/admin") {
        "/admin/lang"
    } else {
        "/lang"
    };
    html! {
        span.langs data-testid="lang-switch" {
            @for (l, label) in [("de", "DE"), ("en", "EN")] {
                a href={ (switch) "?set=" (l) "&back=" (url_encode(back)) }
                    aria-current=(if code(lang) == l { "true" } else { "false" })
                    hreflang=(l) data-testid={ "lang-" (l) } { (label) }
            }
        }
    }
}

/// A page without navigation (login, TOTP, errors).
pub(crate) fn bare(lang: Lang, title: &str, body: Markup) -> Markup {
    let header = html! {
        a.brand href="/admin" data-testid="brand" { "AsgardBackup" }
        span.spacer {}
        (lang_switch(lang, "/admin/login"))
    };
    frame(
        lang,
        title,
        html! {},
        header,
        html! { div.login { (body) } },
        Key::Footer,
    )
}

/// A page of a signed-in admin: navigation with `active` marked, language switch, logout.
/// `back` is the page's own URL (the language switch returns to it); `refresh` reloads the
/// page every two seconds (while a job runs; no script needed).
pub(crate) fn page(
    admin: &Admin,
    active: Nav,
    back: &str,
    title: &str,
    refresh: bool,
    body: Markup,
) -> Markup {
    let lang = admin.lang;
    let header = html! {
        a.brand href="/admin" data-testid="brand" { "AsgardBackup" }
        nav.main data-testid="nav" {
            @for (nav, href, key, id) in NAV {
                a href=(href) data-testid=(id)
                    aria-current=[(nav == active).then_some("page")] { (t(lang, key)) }
            }
            form method="post" action="/admin/logout" data-testid="logout-form" {
                (csrf_field(admin))
                button type="submit" data-testid="nav-logout" { (t(lang, Key::NavLogout)) }
            }
        }
        span.muted data-testid="admin-name" { (admin.name) }
        (lang_switch(lang, back))
    };
    let head = html! {
        @if refresh { meta http-equiv="refresh" content="2"; }
    };
    frame(lang, title, head, header, body, Key::Footer)
}

// --- uauth (issue 14): the end user's layout -------------------------------------------------

/// The entries of the end user's navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserNav {
    Devices,
    Search,
    Deleted,
    /// A page that is none of the above (a folder, a file's timeline).
    #[allow(dead_code)] // for ubrowse's pages (issue 14)
    None,
}

const USER_NAV: [(UserNav, &str, Key, &str); 3] = [
    (
        UserNav::Devices,
        "/my",
        Key::UserNavDevices,
        "nav-my-devices",
    ),
    (
        UserNav::Search,
        "/my/search",
        Key::UserNavSearch,
        "nav-search",
    ),
    (
        UserNav::Deleted,
        "/my/deleted",
        Key::UserNavDeleted,
        "nav-deleted",
    ),
];

/// A page without navigation for end users (the login, errors, a refused link).
pub(crate) fn bare_user(lang: Lang, title: &str, body: Markup) -> Markup {
    let header = html! {
        a.brand href="/my" data-testid="brand" { "AsgardBackup" }
        span.spacer {}
        (lang_switch(lang, "/login"))
    };
    frame(
        lang,
        title,
        html! {},
        header,
        html! { div.login { (body) } },
        Key::FooterUser,
    )
}

/// A page of a signed-in end user: the user's navigation (never the admin's), language switch,
/// logout. `back` is the page's own URL (the language switch returns to it).
pub(crate) fn user_page(
    user: &UserPage,
    active: UserNav,
    back: &str,
    title: &str,
    body: Markup,
) -> Markup {
    let lang = user.lang;
    let header = html! {
        a.brand href="/my" data-testid="brand" { "AsgardBackup" }
        nav.main data-testid="nav" {
            @for (nav, href, key, id) in USER_NAV {
                a href=(href) data-testid=(id)
                    aria-current=[(nav == active).then_some("page")] { (t(lang, key)) }
            }
            form method="post" action="/logout" data-testid="logout-form" {
                (user_csrf_field(user))
                button type="submit" data-testid="nav-logout" { (t(lang, Key::NavLogout)) }
            }
        }
        span.muted data-testid="user-name" { (user.user.name) }
        (lang_switch(lang, back))
    };
    frame(lang, title, html! {}, header, body, Key::FooterUser)
}

/// The hidden CSRF field of a user's form.
pub(crate) fn user_csrf_field(user: &UserPage) -> Markup {
    html! { input type="hidden" name=(super::csrf::FIELD) value=(user.csrf); }
}

/// A POST form of a user's page to `action` with its CSRF field.
#[allow(dead_code)] // for ubrowse's and udown's pages (issue 14)
pub(crate) fn user_post_form(user: &UserPage, action: &str, testid: &str, body: Markup) -> Markup {
    html! {
        form method="post" action=(action) data-testid=(testid) {
            (user_csrf_field(user))
            (body)
        }
    }
}

// --- end uauth --------------------------------------------------------------------------------

/// The hidden field with the session's CSRF token; every form of a page has it.
pub(crate) fn csrf_field(admin: &Admin) -> Markup {
    html! { input type="hidden" name=(super::csrf::FIELD) value=(admin.csrf()); }
}

/// A POST form to `action` with its CSRF field.
pub(crate) fn post_form(
    admin: &Admin,
    action: &str,
    testid: &str,
    class: &str,
    body: Markup,
) -> Markup {
    html! {
        form method="post" action=(action) class=(class) data-testid=(testid) {
            (csrf_field(admin))
            (body)
        }
    }
}

/// A message after an action: `ok` or `error`.
pub(crate) fn flash(ok: bool, text: &str) -> Markup {
    let (class, id) = if ok {
        ("flash ok", "flash-ok")
    } else {
        ("flash error", "flash-error")
    };
    html! { div class=(class) role="status" data-testid=(id) { (text) } }
}

/// A table header cell that sorts by `col` (server-side: `?sort=col&dir=asc|desc`), with the
/// other query parameters of the page in `base` (ending in `?` or `&`).
pub(crate) fn sort_th(base: &str, col: &str, label: &str, sort: &Sort, num: bool) -> Markup {
    let (dir, mark) = match (sort.col.as_str() == col, sort.desc) {
        (true, false) => ("desc", " ▲"),
        (true, true) => ("asc", " ▼"),
        (false, _) => ("asc", ""),
    };
    html! {
        th class=[num.then_some("num")] {
            a href={ (base) "sort=" (col) "&dir=" (dir) } data-testid={ "sort-" (col) } {
                (label) (mark)
            }
        }
    }
}

/// The sort order a page was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sort {
    pub col: String,
    pub desc: bool,
}

impl Sort {
    /// From the query parameters; `cols` are the columns allowed (the first is the default).
    pub(crate) fn of(sort: Option<&str>, dir: Option<&str>, cols: &[&str]) -> Sort {
        let col = sort.filter(|s| cols.contains(s)).unwrap_or(cols[0]);
        Sort {
            col: col.to_owned(),
            desc: dir == Some("desc"),
        }
    }
}

/// Pager links: previous and next page of a list of `total` rows, `per` a page.
pub(crate) fn pager(lang: Lang, base: &str, page: usize, per: usize, total: usize) -> Markup {
    let pages = total.div_ceil(per).max(1);
    html! {
        nav.pager data-testid="pager" {
            @if page > 1 {
                a href={ (base) "page=" (page - 1) } data-testid="pager-prev" rel="prev" {
                    "← " (t(lang, Key::PagerPrev))
                }
            }
            span.muted data-testid="pager-position" { (page) " / " (pages) }
            @if page < pages {
                a href={ (base) "page=" (page + 1) } data-testid="pager-next" rel="next" {
                    (t(lang, Key::PagerNext)) " →"
                }
            }
        }
    }
}

/// A table in a box that scrolls sideways on a narrow screen.
pub(crate) fn table(testid: &str, head: Markup, rows: Markup) -> Markup {
    html! {
        div.scroll {
            table data-testid=(testid) { thead { tr { (head) } } tbody { (rows) } }
        }
    }
}

/// Percent-encodes everything but the unreserved characters (RFC 3986), for query values.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A timestamp (µs) for a table, or a dash for "never".
pub(crate) fn when(us: i64) -> String {
    if us <= 0 {
        "–".to_owned()
    } else {
        asgard_core::fmt::format_utc(us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            url_encode("/admin/runs?user=a b&x=1"),
            "%2Fadmin%2Fruns%3Fuser%3Da%20b%26x%3D1"
        );
        assert_eq!(url_encode("anna-1_x.y~"), "anna-1_x.y~");
    }

    #[test]
    fn sorting_takes_only_known_columns() {
        let s = Sort::of(Some("evil\"><script>"), Some("desc"), &["name", "size"]);
        assert_eq!((s.col.as_str(), s.desc), ("name", true));
        let s = Sort::of(Some("size"), None, &["name", "size"]);
        assert_eq!((s.col.as_str(), s.desc), ("size", false));
    }
}
