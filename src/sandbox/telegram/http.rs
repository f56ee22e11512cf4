//! HTTP surface of the fake Telegram server (axum 0.8).
//!
//! Routes, as on api.telegram.org:
//! - `GET|POST /bot{token}/{method}` — parameters from the query string plus a body
//!   that is JSON (what teloxide sends for most methods), `multipart/form-data` (what
//!   teloxide sends when a file is uploaded: text parts, JSON-serialized objects such
//!   as `reply_markup` as text, and file parts referenced as `attach://{part}`), or
//!   `application/x-www-form-urlencoded`. The answer is always
//!   `{"ok":true,"result":…}` or `{"ok":false,"error_code":…,"description":…}` with the
//!   same HTTP status; never a 5xx (teloxide sleeps 10 s on server errors).
//! - `GET /file/bot{token}/{file_path}` — bytes of an uploaded file.
//!
//! A wrong token gets 401 "Unauthorized" (teloxide: `ApiError::InvalidToken`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::methods::{self, Params, STRUCTURED, Upload};
use super::state::{ApiErr, Shared, now_unix_ms};
use super::types::{RecordedCall, UploadMeta};

const MAX_BODY: usize = 50 * 1024 * 1024;
/// Upper bound for one long poll, whatever the bot asks for.
const MAX_POLL_SECS: i64 = 50;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{bot}/{method}", any(handle_method))
        .route("/file/{bot}/{*path}", get(handle_file))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

fn token_ok(shared: &Shared, segment: &str) -> bool {
    segment.strip_prefix("bot") == Some(shared.token.as_str())
}

fn reply(result: Result<Value, ApiErr>) -> Response {
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(json!({"ok": true, "result": v}))).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.code)
                .ok()
                .filter(|s| !s.is_server_error())
                .unwrap_or(StatusCode::BAD_REQUEST);
            let mut body = json!({
                "ok": false,
                "error_code": e.code,
                "description": e.description,
            });
            if let (Some(o), Some(r)) = (body.as_object_mut(), e.retry_after) {
                o.insert("parameters".into(), json!({"retry_after": r}));
            }
            (status, axum::Json(body)).into_response()
        }
    }
}

async fn handle_method(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    if !token_ok(&shared, &bot) {
        return reply(Err(ApiErr::new(401, "Unauthorized")));
    }
    let at_unix_ms = now_unix_ms();
    let seq = shared.with(|st| {
        let s = st.next_call_seq;
        st.next_call_seq += 1;
        s
    });
    let params = match read_params(query.as_deref(), req).await {
        Ok(p) => p,
        Err(e) => return reply(Err(e)),
    };
    // teloxide sends "SendMessage"; Telegram treats names case-insensitively. Record
    // the documented lowerCamel spelling.
    let method = {
        let mut c = method.chars();
        c.next()
            .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    let lc = method.to_ascii_lowercase();
    let injected = shared.with(|st| st.failures.get_mut(&lc).and_then(|q| q.pop_front()));
    let result = match injected {
        Some(e) => Err(e),
        None if lc == "getupdates" => get_updates(&shared, &params).await,
        None => shared.with(|st| methods::dispatch(st, &method, &params)),
    };
    let uploads = params
        .uploads
        .iter()
        .map(|(part, u)| UploadMeta {
            part: part.clone(),
            file_name: u.file_name.clone(),
            size: u.bytes.len() as u64,
        })
        .collect();
    let call = RecordedCall {
        seq,
        method: method.clone(),
        params: Value::Object(params.json.clone()),
        uploads,
        at_unix_ms,
        error: result.as_ref().err().map(|e| e.description.clone()),
    };
    shared.with(|st| {
        let pos = st.calls.partition_point(|c| c.seq < seq);
        st.calls.insert(pos, call);
    });
    if let Err(e) = &result {
        tracing::debug!(method = %method, code = e.code, description = %e.description, "fake telegram error");
    }
    reply(result)
}

/// Long polling: answers at once when updates are pending, else waits on the `Notify`
/// until one is queued, the timeout passes or the server shuts down.
async fn get_updates(shared: &Shared, p: &Params) -> Result<Value, ApiErr> {
    let offset = p.i64("offset");
    let limit = p.i64("limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = p.i64("timeout").unwrap_or(0).clamp(0, MAX_POLL_SECS) as u64;
    let mut allowed: Option<Vec<String>> = p.json("allowed_updates").and_then(|v| {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
    });
    if shared.peek(|st| !st.webhook_url.is_empty()) {
        return Err(ApiErr::new(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let notified = shared.updates_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch = shared.with(|st| st.take_updates(offset, limit, allowed.take()));
        if !batch.is_empty() || Instant::now() >= deadline || *shutdown.borrow_and_update() {
            return Ok(Value::Array(batch));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn read_params(query: Option<&str>, req: Request) -> Result<Params, ApiErr> {
    let mut params = Params::default();
    if let Some(q) = query {
        for (k, v) in form_pairs(q) {
            insert_text(&mut params.json, k, v);
        }
    }
    let content_type_raw = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let content_type = content_type_raw.to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let body = Bytes::from_request(req, &())
            .await
            .map_err(|e| ApiErr::bad(format!("can't read request body: {e}")))?;
        let parts = parse_multipart(&content_type_raw, &body)?;
        let referenced: HashSet<String> = parts
            .iter()
            .filter_map(|(_, u)| {
                std::str::from_utf8(&u.bytes)
                    .ok()
                    .and_then(|s| s.strip_prefix("attach://"))
                    .map(str::to_owned)
            })
            .collect();
        for (name, up) in parts {
            if referenced.contains(&name) || up.file_name.is_some() {
                params.uploads.insert(name, up);
            } else {
                let text = String::from_utf8_lossy(&up.bytes).into_owned();
                insert_text(&mut params.json, name, text);
            }
        }
    } else {
        let body = Bytes::from_request(req, &())
            .await
            .map_err(|e| ApiErr::bad(format!("can't read request body: {e}")))?;
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let text = String::from_utf8_lossy(&body).into_owned();
            for (k, v) in form_pairs(&text) {
                insert_text(&mut params.json, k, v);
            }
        } else if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(m)) => params.json.extend(m),
                Ok(Value::Null) => {}
                Ok(_) => return Err(ApiErr::bad("request body must be a JSON object")),
                Err(_) => return Err(ApiErr::bad("can't parse JSON request body")),
            }
        }
    }
    Ok(params)
}

/// Text parameter: JSON-decoded for the structured names, kept as a string otherwise.
fn insert_text(json: &mut Map<String, Value>, key: String, value: String) {
    let v = if STRUCTURED.contains(&key.as_str()) {
        serde_json::from_str(&value).unwrap_or(Value::String(value))
    } else {
        Value::String(value)
    };
    json.insert(key, v);
}

/// Splits a `multipart/form-data` body (RFC 7578) into `(name, part)` pairs. A small
/// parser of our own: the main crate builds axum without its `multipart` feature.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<(String, Upload)>, ApiErr> {
    let bad = || ApiErr::bad("can't parse multipart/form-data request");
    let boundary = header_params(content_type)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty())
        .ok_or_else(bad)?;
    let delim = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or_else(bad)?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        let rest = body.get(after..).ok_or_else(bad)?;
        if rest.starts_with(b"--") {
            break;
        }
        let start = after
            + if rest.starts_with(b"\r\n") {
                2
            } else {
                usize::from(rest.starts_with(b"\n"))
            };
        let next = find(body, &delim, start).ok_or_else(bad)?;
        let mut part = body.get(start..next).ok_or_else(bad)?;
        if let Some(p) = part.strip_suffix(b"\r\n") {
            part = p;
        } else if let Some(p) = part.strip_suffix(b"\n") {
            part = p;
        }
        let (head, content) = match find(part, b"\r\n\r\n", 0) {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match find(part, b"\n\n", 0) {
                Some(i) => (&part[..i], &part[i + 2..]),
                None => return Err(bad()),
            },
        };
        let head = String::from_utf8_lossy(head);
        let mut name = None;
        let mut file_name = None;
        let mut part_type = None;
        for line in head.lines() {
            let Some((h, v)) = line.split_once(':') else {
                continue;
            };
            if h.trim().eq_ignore_ascii_case("content-disposition") {
                for (k, val) in header_params(v) {
                    match k.to_ascii_lowercase().as_str() {
                        "name" => name = Some(val),
                        "filename" => file_name = Some(val),
                        _ => {}
                    }
                }
            } else if h.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(v.trim().to_owned());
            }
        }
        parts.push((
            name.ok_or_else(bad)?,
            Upload {
                file_name,
                content_type: part_type,
                bytes: content.to_vec(),
            },
        ));
        pos = next;
    }
    Ok(parts)
}

/// `key=value` / `key="quoted; value"` parameters of a header value (the leading
/// token such as `form-data` is skipped).
fn header_params(v: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = v.chars().peekable();
    // Skip the leading token up to the first ';'.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let key = key.trim().to_owned();
        if !key.is_empty() {
            out.push((key, value.trim_end().to_owned()));
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle_file(
    State(shared): State<Arc<Shared>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if !token_ok(&shared, &bot) {
        return reply(Err(ApiErr::new(401, "Unauthorized")));
    }
    let file = shared.peek(|st| {
        st.file_paths
            .get(&path)
            .and_then(|id| st.files.get(id))
            .cloned()
    });
    match file {
        Some(f) => {
            let mime = f
                .mime_type
                .clone()
                .unwrap_or_else(|| match path.rsplit('.').next() {
                    Some("png") => "image/png".to_owned(),
                    Some("gif") => "image/gif".to_owned(),
                    Some("webp") => "image/webp".to_owned(),
                    Some("jpg") => "image/jpeg".to_owned(),
                    _ => "application/octet-stream".to_owned(),
                });
            let mut resp = Response::new(Body::from(f.bytes.as_ref().clone()));
            if let Ok(v) = header::HeaderValue::from_str(&mime) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        None => reply(Err(ApiErr::new(404, "Not Found"))),
    }
}

#[cfg(test)]
mod tests {
    use super::{header_params, parse_multipart, percent_decode};

    #[test]
    fn multipart_parts_and_quoted_params() {
        let body = b"--b1\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
--b1\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a;b \\\"c\\\".txt\"\r\n\
Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n--b1--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=\"b1\"", body).expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "chat_id");
        assert_eq!(parts[0].1.bytes, b"42");
        assert_eq!(parts[0].1.file_name, None);
        assert_eq!(parts[1].1.file_name.as_deref(), Some("a;b \"c\".txt"));
        assert_eq!(parts[1].1.content_type.as_deref(), Some("text/plain"));
        assert_eq!(parts[1].1.bytes, b"line1\r\nline2");
    }

    #[test]
    fn malformed_multipart_is_an_error_not_a_panic() {
        assert!(parse_multipart("multipart/form-data", b"--x\r\n").is_err());
        assert!(parse_multipart("multipart/form-data; boundary=x", b"garbage").is_err());
        assert!(parse_multipart("multipart/form-data; boundary=x", b"--x\r\nno headers").is_err());
        assert!(parse_multipart("multipart/form-data; boundary=x", b"--x").is_err());
        assert_eq!(
            header_params("form-data; name=x"),
            vec![("name".to_owned(), "x".to_owned())]
        );
        assert_eq!(percent_decode("a%2Bb+c%zz%"), "a+b c%zz%");
    }
}
