//! Bearer tokens: who may use an API that other machines can reach.

use super::HttpError;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The token every request must carry as `Authorization: Bearer <token>`.
pub struct Token(String);

/// Never prints the secret.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// The token in `path`: its content without surrounding whitespace
    /// (a trailing newline is how most editors and `echo` write it).
    pub fn read(path: &Path) -> Result<Token, HttpError> {
        let error = |why: String| HttpError::Token { path: path.display().to_string(), why };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(error("the file is empty".into()));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(error("a token is one word (no spaces or line breaks inside)".into()));
        }
        Ok(Token(token.to_string()))
    }

    /// Whether `given` is the token, compared in constant time (the
    /// time it takes says nothing of how much of it was right).
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }
}

/// Whether serving on `addr` with `token` is allowed: anything but a
/// loopback address needs a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&Token>) -> Result<(), HttpError> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(HttpError::TokenRequired(addr))
    }
}

/// The cookie a browser keeps the token in (see [`require`]).
const COOKIE_NAME: &str = "meshwork_token";

/// The token a request carries: `Authorization: Bearer <token>` (programs),
/// the cookie (a browser, after the URL below), or `?token=<token>` in the
/// URL (a browser's first visit: browsers cannot add the header, and a
/// page's own requests and event streams carry only cookies).
fn carried(request: &Request) -> Option<(&[u8], bool)> {
    let headers = request.headers();
    if let Some(bearer) = headers.get(AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer ")) {
        return Some((bearer, false));
    }
    let cookies = headers.get_all(COOKIE).into_iter().filter_map(|v| v.to_str().ok());
    let prefix = format!("{COOKIE_NAME}=");
    if let Some(cookie) = cookies.flat_map(|c| c.split(';')).find_map(|c| c.trim().strip_prefix(prefix.as_str())) {
        return Some((cookie.as_bytes(), false));
    }
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("token=")).map(|t| (t.as_bytes(), true))
}

/// Middleware: 401 for a request that does not carry the token. One that
/// carried it in its URL gets it back as a cookie (HttpOnly, SameSite
/// Strict), so the dashboard's later requests carry it.
pub(super) async fn require(State(token): State<Arc<Token>>, request: Request, next: Next) -> Response {
    let given = carried(&request).map(|(given, in_url)| (token.matches(given), in_url));
    match given {
        Some((true, in_url)) => {
            let mut response = next.run(request).await;
            let cookie = format!("{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/", token.0);
            if let (true, Ok(cookie)) = (in_url, HeaderValue::from_str(&cookie)) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            response
        }
        _ => {
            let error = super::ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            ([(WWW_AUTHENTICATE, "Bearer")], error).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Result<Token, HttpError> {
        let path = std::env::temp_dir().join(format!("meshwork-token-{}-{}", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        let token = Token::read(&path);
        std::fs::remove_file(&path).unwrap();
        token
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        let t = token("s3cret\n").unwrap();
        for addr in ["127.0.0.1:7070", "127.0.0.2:1", "[::1]:7070"] {
            assert!(check_exposure(addr.parse().unwrap(), None).is_ok(), "{addr} is loopback");
        }
        for addr in ["0.0.0.0:7070", "192.168.1.5:7070", "[::]:7070"] {
            let err = check_exposure(addr.parse().unwrap(), None).unwrap_err().to_string();
            assert!(err.contains("--http-token-file"), "{addr}: {err}");
            assert!(check_exposure(addr.parse().unwrap(), Some(&t)).is_ok(), "{addr} with a token");
        }
    }

    #[test]
    fn a_token_file_holds_one_word_and_only_it_matches() {
        let t = token("  s3cret\n").unwrap();
        assert!(t.matches(b"s3cret"));
        for wrong in [&b"s3cre"[..], b"s3cret2", b"S3cret", b""] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert!(token("\n").unwrap_err().to_string().contains("empty"));
        assert!(token("two words").unwrap_err().to_string().contains("one word"));
        assert_eq!(format!("{t:?}"), "Token(..)", "the secret is never printed");
    }
}
