//! The types that only document the API: request and response bodies that handlers read and
//! write as raw bytes, and the render spec's query parameters (which `Spec::parse` reads from
//! the raw query). Handlers and the OpenAPI document both use them; this module uses neither.

use utoipa::{IntoParams, ToSchema};

/// The bytes of an image, as a request or response body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Documents a body; handlers read and write raw bytes.
pub struct ImageBytes(Vec<u8>);

/// A multipart upload: the image in the field `file`.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a body; handlers read the multipart stream themselves.
pub struct ImageForm {
    /// The image: JPEG, PNG, GIF, WebP, TIFF, JPEG XL or AVIF (and HEIC where built with the
    /// `heic` feature).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The render spec, as query parameters (see the spec grammar in the README).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the spec; `Spec::parse` reads the raw query.
pub struct SpecParams {
    /// Width in pixels, 1 to 16384.
    #[param(minimum = 1, maximum = 16384)]
    w: Option<u32>,
    /// Height in pixels, 1 to 16384.
    #[param(minimum = 1, maximum = 16384)]
    h: Option<u32>,
    /// `cover`, `contain`, `fill`, `inside` (default) or `outside`.
    #[param(inline)]
    fit: Option<Fit>,
    /// `center` (default), `north`, `south`, `east`, `west`, `northeast`, `northwest`, `southeast`,
    /// `southwest` or `smart`.
    #[param(inline)]
    gravity: Option<Gravity>,
    /// `x,y,w,h` in source pixels, applied before resizing.
    #[param(pattern = r"^[0-9]+,[0-9]+,[0-9]+,[0-9]+$")]
    crop: Option<String>,
    /// `0`, `90`, `180` or `270`.
    #[param(minimum = 0, maximum = 270, multiple_of = 90)]
    rotate: Option<u32>,
    /// `h` or `v`.
    #[param(inline)]
    flip: Option<Flip>,
    /// Gaussian blur sigma, 0.3 to 100, or 0 (off).
    #[param(minimum = 0.3, maximum = 100)]
    blur: Option<f32>,
    /// Sharpen sigma, 0.3 to 10, or 0 (off).
    #[param(minimum = 0.3, maximum = 10)]
    sharpen: Option<f32>,
    /// Grayscale output.
    gray: Option<bool>,
    /// `jpeg`, `png`, `webp`, `avif`, `gif` or `auto` (chosen from `Accept`, with `Vary: Accept`).
    #[param(inline)]
    fmt: Option<Fmt>,
    /// Quality 1 to 100 (default 80).
    #[param(minimum = 1, maximum = 100)]
    q: Option<u8>,
    /// Background for flattening alpha and padding, hex `rgb`, `rrggbb` or `rrggbbaa`.
    #[param(pattern = r"^([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")]
    bg: Option<String>,
    /// Device pixel ratio, 1 to 4, at most two decimals.
    #[param(minimum = 1, maximum = 4)]
    dpr: Option<f32>,
    /// Allow output larger than the source.
    enlarge: Option<bool>,
    /// Progressive JPEG.
    progressive: Option<bool>,
    /// Lossless WebP.
    lossless: Option<bool>,
    /// `0`: an animated GIF or WebP source renders as a still (its first frame). By default an
    /// animation stays animated in GIF output.
    anim: Option<bool>,
    /// The frame of an animation to render as a still, from 0.
    #[param(minimum = 0, maximum = 65535)]
    frame: Option<u32>,
    /// Crop away borders of one colour (the top-left pixel's, or `bg`'s) before the rest of
    /// the geometry; the value is how far (0-255, in any channel) a pixel may be from that
    /// colour and still be border (`trim` alone: 10). Not with `crop`; on an animation, only
    /// with `anim=0` or `frame`.
    #[param(minimum = 0, maximum = 255)]
    trim: Option<u8>,
    /// A watermark named in the server's configuration, composited onto the output after every
    /// other step (in linear light). Unknown names are a 400 naming the configured ones.
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    wm: Option<String>,
    /// Where the watermark goes: `southeast` (default), `center`, `north`, `south`, `east`,
    /// `west`, `northeast`, `northwest` or `southwest`. Needs `wm`.
    #[param(inline)]
    wm_pos: Option<WatermarkPosition>,
    /// The watermark's longer side as a fraction of the output's shorter side, 0.01 to 1
    /// (default 0.25), at most two decimals. Needs `wm`.
    #[param(minimum = 0.01, maximum = 1)]
    wm_scale: Option<f32>,
    /// The watermark's opacity, 0.01 to 1 (default 1: its own alpha), at most two decimals.
    /// Needs `wm`.
    #[param(minimum = 0.01, maximum = 1)]
    wm_opacity: Option<f32>,
    /// Pixels (times `dpr`) between the watermark and the edges it is placed against, 0
    /// (default) to 16384; it never goes past the output's edges. Needs `wm`.
    #[param(minimum = 0, maximum = 16384)]
    wm_margin: Option<u32>,
    /// A named spec from the server's configuration; explicit parameters override it.
    preset: Option<String>,
    /// HMAC-SHA256 signature of the URL; required when the server has a signing key.
    sig: Option<String>,
}

/// The values of `fit`, as the spec grammar names them.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum Fit {
    Cover,
    Contain,
    Fill,
    Inside,
    Outside,
}

/// The values of `gravity`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum Gravity {
    Center,
    North,
    South,
    East,
    West,
    Northeast,
    Northwest,
    Southeast,
    Southwest,
    Smart,
}

/// The values of `wm_pos`: the gravity names but `smart`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum WatermarkPosition {
    Center,
    North,
    South,
    East,
    West,
    Northeast,
    Northwest,
    Southeast,
    Southwest,
}

/// The values of `flip`: horizontal or vertical.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
enum Flip {
    #[schema(rename = "h")]
    H,
    #[schema(rename = "v")]
    V,
}

/// The values of `fmt`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum Fmt {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
    Auto,
}
