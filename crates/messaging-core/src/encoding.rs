//! Text encodings read from outside: `application/x-www-form-urlencoded` (query strings, as
//! API Gateway decodes them; object keys in S3 notifications).

/// Form decoding: `+` is a space, `%XY` a byte; a `%` not followed by two hex digits stays as
/// it is; bytes that are not UTF-8 become U+FFFD.
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn form_encoding_decodes_like_api_gateway_and_s3() {
        assert_eq!(form_decode("a+b%2Fc%zz%4"), "a b/c%zz%4");
        assert_eq!(form_decode("%E2%82%AC"), "€");
        assert_eq!(form_decode("%FF"), "\u{FFFD}");
    }
}
