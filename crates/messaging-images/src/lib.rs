//! Image previews: an uploaded image's size and a small JPEG of it, or the reason it gets
//! none. Pure (bytes in, bytes out), so it is tested and fuzzed without AWS; the
//! `image-preview` function (`messaging_handlers::image_preview`) reads the object, calls
//! [`preview`] and stores what it returns.
//!
//! Every image is hostile until decoded within bounds:
//! - its format is read from its bytes, never from its name or declared type, and must be
//!   the declared one (a PNG declared `image/jpeg` is refused: something lied);
//! - its dimensions are read from its header before any pixel is decoded: over
//!   [`MAX_SIDE`] on a side or [`MAX_PIXELS`] in all (a decompression bomb declares
//!   100,000 × 100,000 in a few hundred bytes) it is refused without decoding;
//! - the decoder itself runs under `image`'s [`Limits`] ([`MAX_DECODE_BYTES`] of
//!   allocations), so a header that lies about its size cannot take more memory either;
//! - a truncated or corrupt file is refused with the decoder's reason.
//!
//! Decoding time is bounded by the pixel bound (at most 40 megapixels, about a second on a
//! 1,024 MB Lambda; docs/protocol.md, "Image previews").

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Longest side of a preview, in pixels (aspect ratio kept).
pub const PREVIEW_SIDE: u32 = 320;
/// JPEG quality of a preview.
pub const PREVIEW_QUALITY: u8 = 80;
/// Longest side of an image that gets a preview.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels of an image that gets a preview (a 40-megapixel photo).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Most bytes the decoder may allocate (40 megapixels of RGBA, and room for the decoder).
pub const MAX_DECODE_BYTES: u64 = 200 * 1024 * 1024;
/// Largest file read to make a preview.
pub const MAX_SOURCE_BYTES: u64 = 25 * 1024 * 1024;

/// The MIME types that get previews, with their formats.
pub const PREVIEWED: [(&str, ImageFormat); 5] = [
    ("image/png", ImageFormat::Png),
    ("image/jpeg", ImageFormat::Jpeg),
    ("image/jpg", ImageFormat::Jpeg),
    ("image/gif", ImageFormat::Gif),
    ("image/webp", ImageFormat::WebP),
];

/// A preview: the image's own size and a JPEG of at most [`PREVIEW_SIDE`] a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub width: u32,
    pub height: u32,
    pub preview_width: u32,
    pub preview_height: u32,
    pub jpeg: Vec<u8>,
}

/// Why an image gets no preview: said to whoever asks for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} files get no preview (PNG, JPEG, GIF and WebP do)")]
    NotPreviewed(String),
    #[error("the file is {size} bytes; previews are made of files up to {MAX_SOURCE_BYTES}")]
    TooLarge { size: u64 },
    #[error("the file's bytes are not a PNG, JPEG, GIF or WebP image")]
    UnknownFormat,
    #[error("the file is declared {declared} but its bytes are {found}")]
    WrongType { declared: String, found: String },
    #[error("the image is {width} × {height} pixels; previews are made of images up to {MAX_SIDE} a side and {MAX_PIXELS} pixels")]
    TooManyPixels { width: u32, height: u32 },
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// Whether files of `mime_type` get previews.
pub fn is_previewed(mime_type: &str) -> bool {
    format_of(mime_type).is_some()
}

fn format_of(mime_type: &str) -> Option<ImageFormat> {
    let mime = messaging_core::files::mime_essence(mime_type);
    PREVIEWED
        .iter()
        .find(|(name, _)| *name == mime)
        .map(|(_, format)| *format)
}

fn name(format: ImageFormat) -> String {
    format!("{format:?}").to_uppercase()
}

/// The width and height `bytes`' header declares (no pixel decoded), if it is an image of a
/// known format.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let format = image::guess_format(bytes).ok()?;
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .ok()
}

/// The preview of `bytes`, declared as `mime_type`, or why there is none.
pub fn preview(bytes: &[u8], mime_type: &str) -> Result<Preview, Refused> {
    let declared = format_of(mime_type).ok_or_else(|| Refused::NotPreviewed(mime_type.into()))?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(Refused::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let found = image::guess_format(bytes).map_err(|_| Refused::UnknownFormat)?;
    if found != declared {
        return Err(Refused::WrongType {
            declared: mime_type.into(),
            found: name(found),
        });
    }
    let reader = |bytes| {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), found);
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits);
        reader
    };
    // The header first (read under the default limits, which bound allocations but not
    // sides, so that a bomb's size can be named): refused before a pixel is decoded.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), found)
        .into_dimensions()
        .map_err(|e| refusal(e, None))?;
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(Refused::TooManyPixels { width, height });
    }
    let image = reader(bytes)
        .decode()
        .map_err(|e| refusal(e, Some((width, height))))?;
    // `thumbnail` fits to the box either way: a small image is kept as it is.
    let small = if width <= PREVIEW_SIDE && height <= PREVIEW_SIDE {
        image.to_rgb8()
    } else {
        image.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE).to_rgb8()
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, PREVIEW_QUALITY)
        .encode_image(&small)
        .map_err(|e| Refused::Corrupt(e.to_string()))?;
    Ok(Preview {
        width,
        height,
        preview_width: small.width(),
        preview_height: small.height(),
        jpeg,
    })
}

fn refusal(error: image::ImageError, size: Option<(u32, u32)>) -> Refused {
    match (error, size) {
        (image::ImageError::Limits(_), Some((width, height))) => {
            Refused::TooManyPixels { width, height }
        }
        (image::ImageError::Limits(_), None) => Refused::TooManyPixels {
            width: 0,
            height: 0,
        },
        (other, _) => {
            let mut reason = other.to_string();
            reason.truncate(200);
            Refused::Corrupt(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, RgbImage};

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image: RgbImage = ImageBuffer::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A PNG whose header declares `width` × `height`, with one tiny compressed row: what a
    /// decompression bomb's first bytes look like.
    fn bomb_png(width: u32, height: u32) -> Vec<u8> {
        let mut png = encoded(1, 1, ImageFormat::Png);
        // IHDR's width and height follow the 8-byte signature, the chunk's length and type.
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        // The chunk's CRC (over its type and data) made right, as a real bomb's is.
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn an_image_gets_its_size_and_a_small_jpeg_of_it() {
        for (mime, format) in [
            ("image/png", ImageFormat::Png),
            ("image/jpeg", ImageFormat::Jpeg),
            ("image/gif", ImageFormat::Gif),
            ("image/webp", ImageFormat::WebP),
        ] {
            let preview = preview(&encoded(960, 640, format), mime).unwrap();
            assert_eq!((preview.width, preview.height), (960, 640), "{mime}");
            assert_eq!(
                (preview.preview_width, preview.preview_height),
                (320, 213),
                "{mime}"
            );
            assert_eq!(
                image::guess_format(&preview.jpeg).unwrap(),
                ImageFormat::Jpeg
            );
            assert!(
                preview.jpeg.len() < 64 * 1024,
                "{mime}: {}",
                preview.jpeg.len()
            );
        }
        // Small images keep their size.
        let small = preview(
            &encoded(40, 30, ImageFormat::Png),
            "image/png; charset=binary",
        )
        .unwrap();
        assert_eq!((small.preview_width, small.preview_height), (40, 30));
    }

    #[test]
    fn the_types_previewed_are_the_ones_the_functions_expect() {
        let ours: Vec<&str> = PREVIEWED.iter().map(|(mime, _)| *mime).collect();
        assert_eq!(ours, messaging_core::files::PREVIEWED_MIME_TYPES);
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let bomb = bomb_png(100_000, 100_000);
        assert!(bomb.len() < 100);
        assert_eq!(
            preview(&bomb, "image/png"),
            Err(Refused::TooManyPixels {
                width: 100_000,
                height: 100_000
            })
        );
        // Under the side limit, over the pixel limit.
        assert!(matches!(
            preview(&bomb_png(16_000, 16_000), "image/png"),
            Err(Refused::TooManyPixels { .. })
        ));
        let message = preview(&bomb, "image/png").unwrap_err().to_string();
        assert!(message.contains("100000 × 100000"), "{message}");
    }

    #[test]
    fn truncated_mislabelled_and_foreign_files_are_refused_with_the_reason() {
        let png = encoded(300, 200, ImageFormat::Png);
        assert!(matches!(
            preview(&png[..png.len() / 2], "image/png"),
            Err(Refused::Corrupt(_))
        ));
        let jpeg = encoded(300, 200, ImageFormat::Jpeg);
        assert!(matches!(
            preview(&jpeg[..200], "image/jpeg"),
            Err(Refused::Corrupt(_))
        ));
        assert_eq!(
            preview(&png, "image/jpeg"),
            Err(Refused::WrongType {
                declared: "image/jpeg".into(),
                found: "PNG".into()
            })
        );
        assert_eq!(
            preview(b"%PDF-1.7 not an image", "image/png"),
            Err(Refused::UnknownFormat)
        );
        assert_eq!(
            preview(&png, "image/svg+xml"),
            Err(Refused::NotPreviewed("image/svg+xml".into()))
        );
        assert!(!is_previewed("application/pdf") && is_previewed("IMAGE/PNG"));
        let huge = vec![0u8; MAX_SOURCE_BYTES as usize + 1];
        assert!(matches!(
            preview(&huge, "image/png"),
            Err(Refused::TooLarge { .. })
        ));
    }
}
