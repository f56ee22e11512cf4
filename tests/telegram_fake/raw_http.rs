//! The fake also accepts the encodings other clients (curl, the web demo) use:
//! query strings, form-urlencoded bodies, multipart with a direct file part; malformed
//! bodies get a Telegram-style 400 instead of a crash.

use crate::support::*;
use serde_json::{Value, json};
use teloxide::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request; returns (status, JSON body).
async fn raw(
    addr: std::net::SocketAddr,
    head: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{head} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).expect("json body"))
}

#[tokio::test]
async fn query_form_multipart_and_malformed_bodies() {
    let (fake, bot, _alice) = start_with_alice().await;
    let addr = fake.addr();

    let (code, me) = raw(addr, "GET /bot123:TEST/getMe?x=1", "text/plain", b"").await;
    assert_eq!(code, 200);
    assert_eq!(me["result"]["username"], "kiosk_test_bot");

    let form = "chat_id=42&text=Hi+there%21&reply_markup=%7B%22inline_keyboard%22%3A%5B%5B%7B%22text%22%3A%22Go%22%2C%22callback_data%22%3A%22go%22%7D%5D%5D%7D";
    let (code, sent) = raw(
        addr,
        "POST /bot123:TEST/sendMessage",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{sent}");
    assert_eq!(sent["result"]["text"], "Hi there!");
    let id = sent["result"]["message_id"].as_i64().expect("id") as i32;
    assert_eq!(
        fake.message(42, id).expect("visible").keyboard_rows(),
        vec![vec![("Go".to_owned(), "go".to_owned())]]
    );

    let boundary = "XyZ";
    let mut mp = Vec::new();
    mp.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n")
            .as_bytes(),
    );
    mp.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n[1,2]\r\n"
        )
        .as_bytes(),
    );
    mp.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
    mp.extend_from_slice(PNG_1X1);
    mp.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (code, photo) = raw(
        addr,
        "POST /bot123:TEST/sendPhoto",
        &format!("multipart/form-data; boundary={boundary}"),
        &mp,
    )
    .await;
    assert_eq!(code, 200, "{photo}");
    assert_eq!(
        photo["result"]["caption"], "[1,2]",
        "non-structured text stays a string"
    );
    let id = photo["result"]["message_id"].as_i64().expect("id") as i32;
    let file = fake.message(42, id).and_then(|m| m.photo).expect("photo");
    assert_eq!(file.bytes.as_slice(), PNG_1X1);
    assert_eq!(
        fake.file(&file.file_id).map(|f| f.size),
        Some(PNG_1X1.len() as u64)
    );

    let (code, bad) = raw(
        addr,
        "POST /bot123:TEST/sendMessage",
        "application/json",
        b"{not json",
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(bad["ok"], json!(false));
    assert_eq!(bad["error_code"], json!(400));
    assert!(
        bad["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Bad Request: "))
    );

    let (code, nf) = raw(
        addr,
        "POST /bot123:TEST/editMessageText",
        "application/json",
        br#"{"chat_id":42,"message_id":9999,"text":"x"}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(nf["description"], "Bad Request: message to edit not found");

    let (code, _) = raw(addr, "POST /botnope/getMe", "application/json", b"{}").await;
    assert_eq!(code, 401);

    // The client-side shape of getWebhookInfo.
    let info = bot
        .get_webhook_info()
        .await
        .expect("getWebhookInfo deserializes");
    assert!(info.url.is_none());
    assert_eq!(info.pending_update_count, 0);
}

#[test]
fn debug_output_hides_the_token() {
    let cfg = kiosk::sandbox::telegram::FakeConfig::new("123:SECRET");
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("SECRET"), "{dbg}");
    assert!(dbg.contains("***"));
}
