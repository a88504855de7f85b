//! Redaction of secrets before a value reaches a message, a log or a `Debug` form: passwords
//! in connection and endpoint URLs, and a known password in a tool's output. Everything that
//! shows a URL goes through here.

/// The URL with any password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    rewrite_password(url, Some("***"))
}

/// The URL with any password removed (`user:PASSWORD@` and `?password=`), for a tool that
/// takes its password from the environment instead.
pub fn without_password(url: &str) -> String {
    rewrite_password(url, None)
}

/// Replaces the password of a URL (`user:PASSWORD@` or `?password=`) with `with`, or drops
/// it when `with` is `None`.
fn rewrite_password(url: &str, with: Option<&str>) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let at = rest_start + at;
            if let Some(colon) = out[rest_start..at].find(':') {
                let colon = rest_start + colon;
                match with {
                    Some(w) => out.replace_range(colon + 1..at, w),
                    None => out.replace_range(colon..at, ""),
                }
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let kept: Vec<String> = query
            .split('&')
            .filter_map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                    with.map(|w| format!("{k}={w}"))
                }
                _ => Some(kv.to_string()),
            })
            .collect();
        out = format!("{head}{}", kept.join("&"));
        if out.ends_with('?') {
            out.pop();
        }
    }
    out
}

/// The password inside a URL, if any (percent-decoded as libpq reads it), so it can be
/// scrubbed from tool output. Parsing a connection URL is the PostgreSQL client's job, so
/// this needs the `postgres` feature.
#[cfg(feature = "postgres")]
pub fn url_password(url: &str) -> Option<String> {
    <tokio_postgres::Config as std::str::FromStr>::from_str(url)
        .ok()
        .and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        })
        .filter(|p| !p.is_empty())
}

/// `text` (a tool's output) with `password` and any password inside `url` replaced by
/// `***`: the known password wherever it appears, then the URL itself in its redacted form.
pub fn scrub(text: &str, url: &str, password: Option<&str>) -> String {
    let mut text = text.to_string();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        text = text.replace(p, "***");
    }
    text.replace(url, &redact_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            without_password("postgres://u:p%40ss@h/db?password=x&sslmode=disable"),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(
            without_password("postgres://h/db?password=x"),
            "postgres://h/db"
        );
        #[cfg(feature = "postgres")]
        assert_eq!(
            url_password("postgres://u:p%40ss@h/db").as_deref(),
            Some("p@ss")
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=x"),
            "postgres://h/db?user=u&password=***"
        );
    }

    #[test]
    fn scrubs_a_known_password_and_the_url() {
        let url = "postgres://u:pw@h/db";
        assert_eq!(
            scrub(
                "connect postgres://u:pw@h/db failed: pw rejected",
                url,
                Some("pw")
            ),
            "connect postgres://u:***@h/db failed: *** rejected"
        );
        assert_eq!(scrub("nothing secret", url, None), "nothing secret");
    }
}
