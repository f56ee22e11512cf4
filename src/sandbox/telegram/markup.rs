//! Parse-mode checks of the fake Telegram server.
//!
//! Telegram rejects formatted text it cannot parse with `400 Bad Request: can't parse
//! entities: …` — the commonest way a bot breaks in production (an unescaped `.` in
//! MarkdownV2, a `<br>` in HTML). The fake keeps the text exactly as sent (so tests can
//! assert on it) but validates it like Telegram does, with Telegram's message wording,
//! and measures the visible length (UTF-16 code units after entity parsing, which is
//! what the 4096 / 1024 limits count).
//!
//! The rules modelled, from the Bot API "Formatting options" section:
//! - HTML: tags b/strong, i/em, u/ins, s/strike/del, span class="tg-spoiler",
//!   tg-spoiler, a href, code, pre, blockquote [expandable], tg-emoji; tags must be
//!   closed and properly nested; entities `&lt; &gt; &amp; &quot;` and numeric ones are
//!   one character. Anything else that looks like a tag is "Unsupported start tag".
//! - MarkdownV2: `_*[]()~`>#+-=|{}.!` are reserved and must be escaped with `\` outside
//!   of markup; `*bold*`, `_italic_`, `__underline__`, `~strike~`, `||spoiler||`,
//!   `` `code` ``, ```` ```pre``` ````, `[text](url)`, `![emoji](tg://emoji?id=…)`, `>` at
//!   line start; every entity must be closed.
//! - Markdown (legacy): `*`, `_`, `` ` ``, ```` ``` ```` and `[text](url)` must be closed.

/// Validates `text` for `parse_mode` and returns its visible length in UTF-16 units.
/// `Err` holds the full Telegram description ("Bad Request: can't parse entities: …").
pub(crate) fn visible_len(text: &str, parse_mode: Option<&str>) -> Result<usize, String> {
    let mode = parse_mode.map(|m| m.to_ascii_lowercase());
    let res = match mode.as_deref() {
        None | Some("") => Ok(utf16(text)),
        Some("html") => html(text),
        Some("markdownv2") => markdown_v2(text),
        Some("markdown") => markdown_legacy(text),
        Some(_) => return Err("Bad Request: unsupported parse_mode".to_owned()),
    };
    res.map_err(|e| format!("Bad Request: can't parse entities: {e}"))
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

const HTML_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

fn html(text: &str) -> Result<usize, String> {
    let bytes = text.as_bytes();
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut visible = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                let Some(end_rel) = text[i..].find('>') else {
                    return Err(format!("Unclosed start tag at byte offset {i}"));
                };
                let inner = &text[i + 1..i + end_rel];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match stack.pop() {
                        Some((open, _)) if open == name => {}
                        Some((open, _)) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {i}, expected \"</{open}>\", found \"</{name}>\""
                            ));
                        }
                        None => {
                            return Err(format!("Unexpected end tag at byte offset {i}"));
                        }
                    }
                } else {
                    let name: String = inner
                        .split(|c: char| c.is_whitespace() || c == '/')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {i}"
                        ));
                    }
                    if name == "span" && !inner.contains("tg-spoiler") {
                        return Err(format!(
                            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {i}"
                        ));
                    }
                    stack.push((name, i));
                }
                i += end_rel + 1;
            }
            b'&' => {
                let rest = &text[i..];
                let entity_len = rest.find(';').filter(|&semi| semi <= 10).filter(|&semi| {
                    let name = &rest[1..semi];
                    matches!(name, "lt" | "gt" | "amp" | "quot")
                        || name
                            .strip_prefix("#x")
                            .or_else(|| name.strip_prefix("#X"))
                            .is_some_and(|h| {
                                !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())
                            })
                        || name
                            .strip_prefix('#')
                            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                });
                visible += 1;
                i += entity_len.map_or(1, |semi| semi + 1);
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('\u{0}');
                visible += ch.len_utf16();
                i += ch.len_utf8().max(1);
            }
        }
    }
    if let Some((open, _)) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        ));
    }
    Ok(visible)
}

const MDV2_RESERVED: &str = "_*[]()~`>#+-=|{}.!";

fn markdown_v2(text: &str) -> Result<usize, String> {
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum E {
        Bold,
        Italic,
        Underline,
        Strike,
        Spoiler,
        Link,
    }
    let name = |e: E| match e {
        E::Bold => "Bold",
        E::Italic => "Italic",
        E::Underline => "Underline",
        E::Strike => "Strikethrough",
        E::Spoiler => "Spoiler",
        E::Link => "TextUrl",
    };
    fn toggle(open: &mut Vec<(E, usize)>, e: E, off: usize) {
        if let Some(pos) = open.iter().rposition(|(o, _)| *o == e) {
            open.remove(pos);
        } else {
            open.push((e, off));
        }
    }
    fn reserved(c: char) -> String {
        format!("Character '{c}' is reserved and must be escaped with the preceding '\\'")
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut open: Vec<(E, usize)> = Vec::new();
    let mut visible = 0usize;
    let mut line_start = true;
    let mut k = 0usize;
    let at = |k: usize| chars.get(k).map(|&(_, c)| c);
    while k < chars.len() {
        let (off, c) = chars[k];
        let was_line_start = line_start;
        line_start = c == '\n';
        match c {
            '\\' => {
                match at(k + 1) {
                    Some(n) => visible += n.len_utf16(),
                    None => {
                        return Err(format!(
                            "Can't find end of escape sequence at byte offset {off}"
                        ));
                    }
                }
                k += 2;
                continue;
            }
            '`' => {
                let pre = at(k + 1) == Some('`') && at(k + 2) == Some('`');
                let fence = if pre { 3 } else { 1 };
                let mut j = k + fence;
                let mut closed = false;
                while j < chars.len() {
                    match chars[j].1 {
                        '\\' => {
                            visible += at(j + 1).map_or(0, char::len_utf16);
                            j += 2;
                        }
                        '`' if !pre => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        '`' if at(j + 1) == Some('`') && at(j + 2) == Some('`') => {
                            closed = true;
                            j += 3;
                            break;
                        }
                        other => {
                            visible += other.len_utf16();
                            j += 1;
                        }
                    }
                }
                if !closed {
                    let kind = if pre { "Pre" } else { "Code" };
                    return Err(format!(
                        "Can't find end of {kind} entity at byte offset {off}"
                    ));
                }
                k = j;
                continue;
            }
            '*' | '~' => {
                let e = if c == '*' { E::Bold } else { E::Strike };
                toggle(&mut open, e, off);
            }
            '_' => {
                if at(k + 1) == Some('_') {
                    toggle(&mut open, E::Underline, off);
                    k += 2;
                    continue;
                }
                toggle(&mut open, E::Italic, off);
            }
            '|' => {
                if at(k + 1) != Some('|') {
                    return Err(reserved('|'));
                }
                toggle(&mut open, E::Spoiler, off);
                k += 2;
                continue;
            }
            '!' if at(k + 1) == Some('[') => {
                open.push((E::Link, off));
                k += 2;
                continue;
            }
            '[' => open.push((E::Link, off)),
            ']' => {
                let Some(pos) = open.iter().rposition(|(e, _)| *e == E::Link) else {
                    return Err(reserved(']'));
                };
                if at(k + 1) != Some('(') {
                    // A bare [text] without (url) is not a link in MarkdownV2.
                    return Err(reserved(']'));
                }
                let mut j = k + 2;
                let mut closed = false;
                while j < chars.len() {
                    match chars[j].1 {
                        '\\' => j += 2,
                        ')' => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                if !closed {
                    return Err(format!(
                        "Can't find end of a url at byte offset {}",
                        chars[k + 1].0
                    ));
                }
                open.remove(pos);
                k = j;
                continue;
            }
            '>' if was_line_start => {}
            c if MDV2_RESERVED.contains(c) => return Err(reserved(c)),
            other => visible += other.len_utf16(),
        }
        k += 1;
    }
    if let Some(&(e, off)) = open.first() {
        return Err(format!(
            "Can't find end of {} entity at byte offset {off}",
            name(e)
        ));
    }
    Ok(visible)
}

fn markdown_legacy(text: &str) -> Result<usize, String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut visible = 0usize;
    let mut k = 0usize;
    let unclosed =
        |off: usize| format!("Can't find end of the entity starting at byte offset {off}");
    while k < chars.len() {
        let (off, c) = chars[k];
        match c {
            '\\' if chars
                .get(k + 1)
                .is_some_and(|&(_, n)| matches!(n, '*' | '_' | '`' | '[')) =>
            {
                visible += 1;
                k += 2;
            }
            '*' | '_' | '`' => {
                let pre = c == '`'
                    && chars.get(k + 1).map(|p| p.1) == Some('`')
                    && chars.get(k + 2).map(|p| p.1) == Some('`');
                let fence = if pre { 3 } else { 1 };
                let mut j = k + fence;
                let mut found = None;
                while j < chars.len() {
                    if chars[j].1 == c
                        && (!pre
                            || (chars.get(j + 1).map(|p| p.1) == Some('`')
                                && chars.get(j + 2).map(|p| p.1) == Some('`')))
                    {
                        found = Some(j);
                        break;
                    }
                    j += 1;
                }
                let Some(end) = found else {
                    return Err(unclosed(off));
                };
                visible += chars[k + fence..end]
                    .iter()
                    .map(|p| p.1.len_utf16())
                    .sum::<usize>();
                k = end + fence;
            }
            '[' => {
                let close = chars[k..].iter().position(|p| p.1 == ']').map(|p| p + k);
                let Some(close) = close else {
                    return Err(unclosed(off));
                };
                visible += chars[k + 1..close]
                    .iter()
                    .map(|p| p.1.len_utf16())
                    .sum::<usize>();
                if chars.get(close + 1).map(|p| p.1) == Some('(') {
                    let end = chars[close..].iter().position(|p| p.1 == ')');
                    match end {
                        Some(e) => k = close + e + 1,
                        None => return Err(unclosed(chars[close + 1].0)),
                    }
                } else {
                    k = close + 1;
                }
            }
            other => {
                visible += other.len_utf16();
                k += 1;
            }
        }
    }
    Ok(visible)
}

#[cfg(test)]
mod tests {
    use super::visible_len;

    #[test]
    fn plain_counts_utf16() {
        assert_eq!(visible_len("a😀", None), Ok(3));
    }

    #[test]
    fn html_rules() {
        assert_eq!(visible_len("<b>Hi</b> &amp; <i>x</i>", Some("HTML")), Ok(6));
        assert_eq!(
            visible_len("<a href=\"https://x.y\">go</a>", Some("HTML")),
            Ok(2)
        );
        let br = visible_len("a<br>b", Some("HTML")).unwrap_err();
        assert!(br.contains("Unsupported start tag \"br\""), "{br}");
        let open = visible_len("<b>bold", Some("HTML")).unwrap_err();
        assert!(open.starts_with("Bad Request: can't parse entities: Can't find end tag"));
        assert!(visible_len("<b><i>x</b></i>", Some("HTML")).is_err());
    }

    #[test]
    fn markdown_v2_rules() {
        assert_eq!(visible_len("*Price:* 10\\.50", Some("MarkdownV2")), Ok(12));
        let dot = visible_len("Price: 10.50", Some("MarkdownV2")).unwrap_err();
        assert!(dot.contains("Character '.' is reserved"), "{dot}");
        assert_eq!(
            visible_len(">quote [site](https://x.y/a_b) `a.b`", Some("MarkdownV2")),
            Ok(14)
        );
        let unclosed = visible_len("*bold", Some("MarkdownV2")).unwrap_err();
        assert!(
            unclosed.contains("Can't find end of Bold entity"),
            "{unclosed}"
        );
        assert_eq!(visible_len("__u__ ||s||", Some("MarkdownV2")), Ok(3));
    }

    #[test]
    fn markdown_legacy_rules() {
        assert_eq!(
            visible_len("*a* _b_ `c` [d](http://e)", Some("Markdown")),
            Ok(7)
        );
        assert!(visible_len("*open", Some("Markdown")).is_err());
        assert_eq!(visible_len("1.5 - ok!", Some("Markdown")), Ok(9));
    }
}
