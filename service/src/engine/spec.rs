//! The render spec: what a client asks of one image, as a query string such as
//! `w=400&h=300&fit=cover&fmt=webp`.
//!
//! A [`Spec`] is parsed once at the edge (HTTP or the `render` command) and trusted afterwards.
//! Parsing applies defaults, so two query strings that ask for the same output produce equal
//! specs with equal [`Spec::canonical`] forms and equal [`Spec::variant_key`]s; that key names
//! the cached variant. Every error names the parameter and what it allows.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use sha2::{Digest, Sha256};

/// Largest width or height a spec may ask for, before `dpr` is applied.
pub const MAX_DIMENSION: u32 = 16_384;
/// Default output quality, as imgproxy and sharp use.
pub const DEFAULT_QUALITY: u8 = 80;
/// `q`: the quality range.
pub const QUALITY: (u32, u32) = (1, 100);
/// `blur`: a gaussian sigma in this range, or 0 (off); kept to two decimals.
pub const BLUR_SIGMA: (f32, f32) = (0.3, 100.0);
/// `sharpen`: a sigma in this range, or 0 (off); kept to two decimals.
pub const SHARPEN_SIGMA: (f32, f32) = (0.3, 10.0);
/// `dpr`: the device pixel ratio's range; at most two decimals.
pub const DPR: (f64, f64) = (1.0, 4.0);
/// The largest `frame` the grammar accepts; an image's own frame count bounds it further.
pub const MAX_FRAME: u32 = 65_535;
/// `trim`'s threshold when none is given: how far (0-255, any channel) a pixel may be from the
/// border colour and still count as border.
pub const DEFAULT_TRIM_THRESHOLD: u8 = 10;
/// The values a flag (`gray`, `enlarge`, `progressive`, `lossless`, `anim`) takes; empty means on.
pub const FLAG_VALUES: [&str; 5] = ["", "1", "true", "0", "false"];
/// `wm_scale`: the watermark's longer side as a fraction of the output's shorter side, in
/// hundredths (and its default).
pub const WATERMARK_SCALE: (u32, u32) = (1, 100);
pub const DEFAULT_WATERMARK_SCALE: u8 = 25;
/// `wm_opacity`, in hundredths (and its default: opaque as the watermark's own alpha says).
pub const WATERMARK_OPACITY: (u32, u32) = (1, 100);
pub const DEFAULT_WATERMARK_OPACITY: u8 = 100;
/// `wm_pos` when none is given.
pub const DEFAULT_WATERMARK_POSITION: Gravity = Gravity::SouthEast;
/// `wm_margin`: pixels (before `dpr`) between the watermark and the edges it is placed against.
pub const MAX_WATERMARK_MARGIN: u32 = MAX_DIMENSION;
/// The names a watermark may have in configuration (and so in `wm=`).
pub const WATERMARK_NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// `bg`: hex `RGB`, `RRGGBB` or `RRGGBBAA`, with or without a leading `#`.
pub const BACKGROUND_PATTERN: &str = "^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$";
/// `crop`: four whole numbers `x,y,w,h` (spaces around them allowed), `w` and `h` at least 1.
pub const CROP_PATTERN: &str = r"^ *[0-9]+ *, *[0-9]+ *, *0*[1-9][0-9]* *, *0*[1-9][0-9]* *$";

/// A parameter that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{param}`: {message}")]
pub struct SpecError {
    pub param: String,
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(param: &str, message: impl Into<String>) -> SpecError {
        SpecError { param: param.to_owned(), message: message.into() }
    }
}

/// How the image is fitted into a `w` x `h` box (the names and meanings of sharp's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Cover the box exactly, cropping what overflows at `gravity`.
    Cover,
    /// Fit inside the box and pad the rest with `bg`, so the output is exactly the box.
    Contain,
    /// Stretch to the box, ignoring the aspect ratio.
    Fill,
    /// As large as possible while both sides stay within the box.
    #[default]
    Inside,
    /// As small as possible while both sides are at least the box.
    Outside,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gravity {
    #[default]
    Center,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
    /// The region with the most detail (edge energy) wins.
    Smart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    Horizontal,
    Vertical,
}

/// An encodable output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
}

/// What `fmt` asked for: a fixed format, or negotiation from the client's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatRequest {
    Fixed(OutputFormat),
    Auto,
}

/// A crop rectangle in the pixels of the source image after EXIF orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// An sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Color {
    pub const WHITE: Color = Color { r: 255, g: 255, b: 255, a: 255 };
}

/// What a spec knows of a configured watermark: enough to plan a render with it and to name
/// the variant, without its pixels ([`crate::engine::watermark::Watermark`] has those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkInfo {
    /// 16 hex digits of the SHA-256 of the watermark's pixels as loaded: part of the variant
    /// key, so that replacing a watermark's image under the same name renders its variants anew.
    pub digest: String,
    /// Its size as held (see [`crate::engine::watermark::MAX_SIDE`]).
    pub width: u32,
    pub height: u32,
}

/// `wm=NAME` and how it is placed (`wm_pos`, `wm_scale`, `wm_opacity`, `wm_margin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkSpec {
    pub name: String,
    pub info: WatermarkInfo,
    /// Where it goes: the gravity names, `smart` excepted.
    pub position: Gravity,
    /// Its longer side, in hundredths of the output's shorter side.
    pub scale_percent: u8,
    /// Hundredths of its own alpha.
    pub opacity_percent: u8,
    /// Pixels between it and the edges it is placed against, before `dpr`.
    pub margin: u32,
}

/// A validated render spec. Construct it with [`Spec::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub gravity: Gravity,
    pub crop: Option<CropRect>,
    pub rotate: Rotation,
    pub flip: Option<Flip>,
    pub blur: Option<f32>,
    pub sharpen: Option<f32>,
    pub gray: bool,
    /// `None` keeps the source format.
    pub format: Option<FormatRequest>,
    pub quality: u8,
    pub background: Option<Color>,
    /// Device pixel ratio in hundredths (100 = 1x), so that it compares and hashes exactly.
    pub dpr_percent: u16,
    pub enlarge: bool,
    pub progressive: bool,
    pub lossless: bool,
    /// Whether an animated source stays animated in an animated format (`anim=0`: a still).
    pub animated: bool,
    /// The frame of an animation to render as a still, from 0 (`frame=N`).
    pub frame: Option<u32>,
    /// Crop away borders of one colour first, with this threshold (`trim`, `trim=N`).
    pub trim: Option<u8>,
    /// A watermark composited onto the output (`wm=NAME` and its options).
    pub watermark: Option<WatermarkSpec>,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            width: None,
            height: None,
            fit: Fit::default(),
            gravity: Gravity::default(),
            crop: None,
            rotate: Rotation::default(),
            flip: None,
            blur: None,
            sharpen: None,
            gray: false,
            format: None,
            quality: DEFAULT_QUALITY,
            background: None,
            dpr_percent: 100,
            enlarge: false,
            progressive: false,
            lossless: false,
            animated: true,
            frame: None,
            trim: None,
            watermark: None,
        }
    }
}

/// What a spec may refer to by name: presets from configuration, used through `preset=NAME`,
/// and the watermarks configured, used through `wm=NAME`.
#[derive(Debug, Clone, Default)]
pub struct Presets {
    by_name: HashMap<String, String>,
    watermarks: BTreeMap<String, WatermarkInfo>,
}

impl Presets {
    /// Checks every preset's query now, so a bad preset fails at start-up and not per request.
    pub fn new(by_name: HashMap<String, String>) -> Result<Presets, SpecError> {
        Presets::with_watermarks(by_name, BTreeMap::new())
    }

    /// [`Presets::new`], with the watermarks that `wm=` (in presets too) may name.
    pub fn with_watermarks(
        by_name: HashMap<String, String>,
        watermarks: BTreeMap<String, WatermarkInfo>,
    ) -> Result<Presets, SpecError> {
        let presets = Presets { by_name, watermarks };
        for (name, query) in &presets.by_name {
            let pairs = split_pairs(query)?;
            if pairs.contains_key("preset") {
                return Err(SpecError::new("preset", format!("preset `{name}` may not name another preset")));
            }
            Spec::from_pairs(pairs, &presets.watermarks)
                .map_err(|e| SpecError::new("preset", format!("preset `{name}`: {e}")))?;
        }
        Ok(presets)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Every key of the grammar.
pub(crate) const KEYS: &[&str] = &[
    "anim",
    "bg",
    "blur",
    "crop",
    "dpr",
    "enlarge",
    "fit",
    "flip",
    "fmt",
    "frame",
    "gravity",
    "gray",
    "h",
    "lossless",
    "preset",
    "progressive",
    "q",
    "rotate",
    "sharpen",
    "trim",
    "w",
    "wm",
    "wm_margin",
    "wm_opacity",
    "wm_pos",
    "wm_scale",
];

impl Spec {
    /// Parses a query string (without the leading `?`). Keys given explicitly override those of
    /// a `preset`. Unknown keys, repeated keys and bad values are errors.
    pub fn parse(query: &str, presets: &Presets) -> Result<Spec, SpecError> {
        let mut pairs = split_pairs(query)?;
        if let Some(name) = pairs.remove("preset") {
            let preset =
                presets.get(&name).ok_or_else(|| SpecError::new("preset", format!("no preset named `{name}`")))?;
            let mut merged = split_pairs(preset)?;
            merged.extend(pairs);
            pairs = merged;
        }
        Spec::from_pairs(pairs, &presets.watermarks)
    }

    fn from_pairs(
        pairs: BTreeMap<String, String>,
        watermarks: &BTreeMap<String, WatermarkInfo>,
    ) -> Result<Spec, SpecError> {
        let mut spec = Spec::default();
        let mut watermark = None;
        let mut position = None;
        let mut scale = None;
        let mut opacity = None;
        let mut margin = None;
        for (key, value) in &pairs {
            let value = value.as_str();
            match key.as_str() {
                "w" => spec.width = Some(parse_dimension("w", value)?),
                "h" => spec.height = Some(parse_dimension("h", value)?),
                "fit" => spec.fit = parse_fit(value)?,
                "gravity" => spec.gravity = parse_gravity(value)?,
                "crop" => spec.crop = Some(parse_crop(value)?),
                "rotate" => spec.rotate = parse_rotation(value)?,
                "flip" => spec.flip = Some(parse_flip(value)?),
                "blur" => spec.blur = parse_sigma("blur", value, BLUR_SIGMA)?,
                "sharpen" => spec.sharpen = parse_sigma("sharpen", value, SHARPEN_SIGMA)?,
                "gray" => spec.gray = parse_flag("gray", value)?,
                "fmt" => spec.format = Some(parse_format(value)?),
                "q" => spec.quality = parse_quality(value)?,
                "bg" => spec.background = Some(parse_color(value)?),
                "dpr" => spec.dpr_percent = parse_dpr(value)?,
                "enlarge" => spec.enlarge = parse_flag("enlarge", value)?,
                "progressive" => spec.progressive = parse_flag("progressive", value)?,
                "lossless" => spec.lossless = parse_flag("lossless", value)?,
                "anim" => spec.animated = parse_flag("anim", value)?,
                "frame" => spec.frame = Some(parse_u32("frame", value, 0, MAX_FRAME)?),
                "trim" => {
                    spec.trim = Some(match value {
                        "" => DEFAULT_TRIM_THRESHOLD,
                        _ => parse_u32("trim", value, 0, 255)? as u8,
                    })
                }
                "wm" => watermark = Some(parse_watermark_name(value, watermarks)?),
                "wm_pos" => position = Some(parse_watermark_position(value)?),
                "wm_scale" => scale = Some(parse_hundredths("wm_scale", value, WATERMARK_SCALE)?),
                "wm_opacity" => opacity = Some(parse_hundredths("wm_opacity", value, WATERMARK_OPACITY)?),
                "wm_margin" => margin = Some(parse_u32("wm_margin", value, 0, MAX_WATERMARK_MARGIN)?),
                other => {
                    return Err(SpecError::new(
                        other,
                        format!("unknown parameter; known parameters are {}", KEYS.join(", ")),
                    ));
                }
            }
        }
        match watermark {
            Some((name, info)) => {
                spec.watermark = Some(WatermarkSpec {
                    name,
                    info,
                    position: position.unwrap_or(DEFAULT_WATERMARK_POSITION),
                    scale_percent: scale.unwrap_or(DEFAULT_WATERMARK_SCALE),
                    opacity_percent: opacity.unwrap_or(DEFAULT_WATERMARK_OPACITY),
                    margin: margin.unwrap_or(0),
                });
            }
            None => {
                let given = [
                    ("wm_margin", margin.is_some()),
                    ("wm_opacity", opacity.is_some()),
                    ("wm_pos", position.is_some()),
                    ("wm_scale", scale.is_some()),
                ];
                if let Some((param, _)) = given.into_iter().find(|(_, given)| *given) {
                    return Err(SpecError::new(param, "needs a watermark: add `wm=NAME`"));
                }
            }
        }
        if spec.trim.is_some() && spec.crop.is_some() {
            return Err(SpecError::new("trim", "cannot be combined with `crop`: trim finds the region itself"));
        }
        Ok(spec)
    }

    /// The same spec with `fmt` fixed, as the HTTP layer does after negotiating `fmt=auto` or
    /// looking up the source format.
    pub fn with_format(&self, format: OutputFormat) -> Spec {
        Spec { format: Some(FormatRequest::Fixed(format)), ..self.clone() }
    }

    /// The output format for a source of `source` format, when `fmt` is not `auto`.
    pub fn output_format(&self, source: OutputFormat) -> OutputFormat {
        match self.format {
            Some(FormatRequest::Fixed(format)) => format,
            Some(FormatRequest::Auto) | None => source,
        }
    }

    /// Target width and height after `dpr`, each clamped to [`MAX_DIMENSION`].
    pub fn target_box(&self) -> (Option<u32>, Option<u32>) {
        let scale = |v: u32| ((u64::from(v) * u64::from(self.dpr_percent)).div_ceil(100) as u32).min(MAX_DIMENSION);
        (self.width.map(scale), self.height.map(scale))
    }

    /// The canonical query: every key with its value after defaults, sorted by key. Equal specs
    /// have equal canonical forms; optional keys that are unset are left out.
    pub fn canonical(&self) -> String {
        let mut pairs: Vec<(&str, String)> = vec![
            ("dpr", format_dpr(self.dpr_percent)),
            ("enlarge", flag(self.enlarge)),
            ("fit", fit_name(self.fit).to_owned()),
            ("gravity", gravity_name(self.gravity).to_owned()),
            ("gray", flag(self.gray)),
            ("lossless", flag(self.lossless)),
            ("progressive", flag(self.progressive)),
            ("q", self.quality.to_string()),
            ("rotate", rotation_degrees(self.rotate).to_string()),
        ];
        if let Some(w) = self.width {
            pairs.push(("w", w.to_string()));
        }
        if let Some(h) = self.height {
            pairs.push(("h", h.to_string()));
        }
        if let Some(c) = self.crop {
            pairs.push(("crop", format!("{},{},{},{}", c.x, c.y, c.width, c.height)));
        }
        if let Some(f) = self.flip {
            pairs.push(("flip", if f == Flip::Horizontal { "h" } else { "v" }.to_owned()));
        }
        if let Some(s) = self.blur {
            pairs.push(("blur", format_sigma(s)));
        }
        if let Some(s) = self.sharpen {
            pairs.push(("sharpen", format_sigma(s)));
        }
        if let Some(f) = self.format {
            pairs.push(("fmt", format_request_name(f).to_owned()));
        }
        if let Some(c) = self.background {
            pairs.push(("bg", format!("{:02x}{:02x}{:02x}{:02x}", c.r, c.g, c.b, c.a)));
        }
        // Left out at their defaults, so that variants named before they existed keep their keys.
        if !self.animated {
            pairs.push(("anim", flag(false)));
        }
        if let Some(frame) = self.frame {
            pairs.push(("frame", frame.to_string()));
        }
        if let Some(threshold) = self.trim {
            pairs.push(("trim", threshold.to_string()));
        }
        if let Some(wm) = &self.watermark {
            pairs.push(("wm", wm.name.clone()));
            pairs.push(("wm_margin", wm.margin.to_string()));
            pairs.push(("wm_opacity", format_hundredths(u32::from(wm.opacity_percent))));
            pairs.push(("wm_pos", gravity_name(wm.position).to_owned()));
            pairs.push(("wm_scale", format_hundredths(u32::from(wm.scale_percent))));
        }
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    }

    /// A stable name for the variant: 32 hex digits of the SHA-256 of [`Spec::canonical`], and
    /// of the watermark's digest when there is one (a new image under a watermark's name makes
    /// new variants).
    pub fn variant_key(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.canonical().as_bytes());
        if let Some(wm) = &self.watermark {
            hasher.update(b"\nwatermark=");
            hasher.update(wm.info.digest.as_bytes());
        }
        hex::encode(&hasher.finalize()[..16])
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl OutputFormat {
    pub fn parse(name: &str) -> Option<OutputFormat> {
        Some(match name {
            "jpeg" | "jpg" => OutputFormat::Jpeg,
            "png" => OutputFormat::Png,
            "webp" => OutputFormat::Webp,
            "avif" => OutputFormat::Avif,
            "gif" => OutputFormat::Gif,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
            OutputFormat::Gif => "gif",
        }
    }

    /// File name extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            other => other.name(),
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
            OutputFormat::Gif => "image/gif",
        }
    }

    /// The largest width or height the encoder writes: libwebp's 14-bit size fields (16383),
    /// libjpeg's `JPEG_MAX_DIMENSION` (65500), GIF's 16-bit fields and AV1's frame size
    /// fields (65535); PNG's 31-bit fields are never reached under the pixel limits.
    pub fn max_dimension(self) -> u32 {
        match self {
            OutputFormat::Webp => 16_383,
            OutputFormat::Jpeg => 65_500,
            OutputFormat::Gif | OutputFormat::Avif => 65_535,
            OutputFormat::Png => i32::MAX as u32,
        }
    }

    /// Whether the format can hold an animation (as Pixelmill writes it).
    pub fn is_animated(self) -> bool {
        matches!(self, OutputFormat::Gif | OutputFormat::Webp)
    }

    pub fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }
}

fn split_pairs(query: &str) -> Result<BTreeMap<String, String>, SpecError> {
    let mut pairs = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key.is_empty() {
            continue;
        }
        let key = key.into_owned();
        if pairs.insert(key.clone(), value.into_owned()).is_some() {
            return Err(SpecError::new(&key, "given more than once"));
        }
    }
    Ok(pairs)
}

fn parse_u32(param: &str, value: &str, min: u32, max: u32) -> Result<u32, SpecError> {
    match value.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(SpecError::new(param, format!("must be a whole number from {min} to {max}, got `{value}`"))),
    }
}

fn parse_dimension(param: &str, value: &str) -> Result<u32, SpecError> {
    parse_u32(param, value, 1, MAX_DIMENSION)
}

fn parse_quality(value: &str) -> Result<u8, SpecError> {
    parse_u32("q", value, QUALITY.0, QUALITY.1).map(|q| q as u8)
}

fn parse_flag(param: &str, value: &str) -> Result<bool, SpecError> {
    match value {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(SpecError::new(param, format!("must be 1, 0, true or false, got `{value}`"))),
    }
}

fn parse_fit(value: &str) -> Result<Fit, SpecError> {
    Ok(match value {
        "cover" => Fit::Cover,
        "contain" => Fit::Contain,
        "fill" => Fit::Fill,
        "inside" => Fit::Inside,
        "outside" => Fit::Outside,
        _ => {
            return Err(SpecError::new(
                "fit",
                format!("must be one of cover, contain, fill, inside, outside, got `{value}`"),
            ));
        }
    })
}

fn parse_gravity(value: &str) -> Result<Gravity, SpecError> {
    Ok(match value {
        "center" | "centre" => Gravity::Center,
        "north" => Gravity::North,
        "south" => Gravity::South,
        "east" => Gravity::East,
        "west" => Gravity::West,
        "northeast" => Gravity::NorthEast,
        "northwest" => Gravity::NorthWest,
        "southeast" => Gravity::SouthEast,
        "southwest" => Gravity::SouthWest,
        "smart" => Gravity::Smart,
        _ => {
            return Err(SpecError::new(
                "gravity",
                format!(
                    "must be one of center, north, south, east, west, northeast, northwest, southeast, \
                     southwest, smart, got `{value}`"
                ),
            ));
        }
    })
}

fn parse_crop(value: &str) -> Result<CropRect, SpecError> {
    let bad =
        || SpecError::new("crop", format!("must be x,y,w,h in whole pixels with w and h at least 1, got `{value}`"));
    let parts: Vec<u32> =
        value.split(',').map(|p| p.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    match parts[..] {
        [x, y, width, height] if width > 0 && height > 0 => Ok(CropRect { x, y, width, height }),
        _ => Err(bad()),
    }
}

fn parse_rotation(value: &str) -> Result<Rotation, SpecError> {
    Ok(match value {
        "0" => Rotation::R0,
        "90" => Rotation::R90,
        "180" => Rotation::R180,
        "270" => Rotation::R270,
        _ => {
            return Err(SpecError::new("rotate", format!("must be 0, 90, 180 or 270, got `{value}`")));
        }
    })
}

fn parse_flip(value: &str) -> Result<Flip, SpecError> {
    match value {
        "h" => Ok(Flip::Horizontal),
        "v" => Ok(Flip::Vertical),
        _ => Err(SpecError::new("flip", format!("must be h or v, got `{value}`"))),
    }
}

/// A sigma of 0 means the operation is off; otherwise it must lie in `min..=max`. Values are
/// kept to two decimals so that equal requests hash equally.
fn parse_sigma(param: &str, value: &str, (min, max): (f32, f32)) -> Result<Option<f32>, SpecError> {
    let bad = || SpecError::new(param, format!("must be 0 (off) or a number from {min} to {max}, got `{value}`"));
    let sigma: f32 = value.parse().map_err(|_| bad())?;
    if sigma == 0.0 {
        return Ok(None);
    }
    if !sigma.is_finite() || sigma < min || sigma > max {
        return Err(bad());
    }
    Ok(Some((sigma * 100.0).round() / 100.0))
}

fn parse_format(value: &str) -> Result<FormatRequest, SpecError> {
    if value == "auto" {
        return Ok(FormatRequest::Auto);
    }
    OutputFormat::parse(value)
        .map(FormatRequest::Fixed)
        .ok_or_else(|| SpecError::new("fmt", format!("must be one of jpeg, png, webp, avif, gif, auto, got `{value}`")))
}

fn parse_color(value: &str) -> Result<Color, SpecError> {
    let bad = || SpecError::new("bg", format!("must be a hex colour RGB, RRGGBB or RRGGBBAA, got `{value}`"));
    let hex_digits = value.strip_prefix('#').unwrap_or(value);
    if !hex_digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex_digits[i..i + 2], 16).map_err(|_| bad());
    match hex_digits.len() {
        3 => {
            let nibble = |i: usize| u8::from_str_radix(&hex_digits[i..=i], 16).map(|n| n * 17).map_err(|_| bad());
            Ok(Color { r: nibble(0)?, g: nibble(1)?, b: nibble(2)?, a: 255 })
        }
        6 => Ok(Color { r: byte(0)?, g: byte(2)?, b: byte(4)?, a: 255 }),
        8 => Ok(Color { r: byte(0)?, g: byte(2)?, b: byte(4)?, a: byte(6)? }),
        _ => Err(bad()),
    }
}

/// Whether `name` may name a watermark ([`WATERMARK_NAME_PATTERN`]).
pub fn is_watermark_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A number in `min..=max` hundredths with at most two decimals, in hundredths.
fn parse_hundredths(param: &str, value: &str, (min, max): (u32, u32)) -> Result<u8, SpecError> {
    let range = |v: u32| format_hundredths(v);
    let bad = || {
        SpecError::new(
            param,
            format!("must be a number from {} to {} with at most two decimals, got `{value}`", range(min), range(max)),
        )
    };
    let number: f64 = value.parse().map_err(|_| bad())?;
    let hundredths = (number * 100.0).round();
    if !number.is_finite() || (hundredths - number * 100.0).abs() > 1e-6 {
        return Err(bad());
    }
    if hundredths < f64::from(min) || hundredths > f64::from(max) {
        return Err(bad());
    }
    Ok(hundredths as u8)
}

fn parse_watermark_name(
    value: &str,
    watermarks: &BTreeMap<String, WatermarkInfo>,
) -> Result<(String, WatermarkInfo), SpecError> {
    match watermarks.get(value) {
        Some(info) => Ok((value.to_owned(), info.clone())),
        None if watermarks.is_empty() => {
            Err(SpecError::new("wm", format!("no watermark named `{value}`: this server has none configured")))
        }
        None => Err(SpecError::new(
            "wm",
            format!(
                "no watermark named `{value}`; configured: {}",
                watermarks.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn parse_watermark_position(value: &str) -> Result<Gravity, SpecError> {
    match parse_gravity(value) {
        Ok(Gravity::Smart) | Err(_) => Err(SpecError::new(
            "wm_pos",
            format!(
                "must be one of center, north, south, east, west, northeast, northwest, southeast, southwest, \
                 got `{value}`"
            ),
        )),
        Ok(gravity) => Ok(gravity),
    }
}

fn parse_dpr(value: &str) -> Result<u16, SpecError> {
    let bad =
        || SpecError::new("dpr", format!("must be a number from 1 to 4 with at most two decimals, got `{value}`"));
    let dpr: f64 = value.parse().map_err(|_| bad())?;
    if !(DPR.0..=DPR.1).contains(&dpr) {
        return Err(bad());
    }
    let percent = (dpr * 100.0).round();
    if (percent - dpr * 100.0).abs() > 1e-6 {
        return Err(bad());
    }
    Ok(percent as u16)
}

fn flag(v: bool) -> String {
    if v { "1" } else { "0" }.to_owned()
}

fn format_dpr(percent: u16) -> String {
    format_hundredths(u32::from(percent))
}

fn format_sigma(sigma: f32) -> String {
    format_hundredths((sigma * 100.0).round() as u32)
}

fn format_hundredths(n: u32) -> String {
    let (whole, frac) = (n / 100, n % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

fn fit_name(fit: Fit) -> &'static str {
    match fit {
        Fit::Cover => "cover",
        Fit::Contain => "contain",
        Fit::Fill => "fill",
        Fit::Inside => "inside",
        Fit::Outside => "outside",
    }
}

fn gravity_name(gravity: Gravity) -> &'static str {
    match gravity {
        Gravity::Center => "center",
        Gravity::North => "north",
        Gravity::South => "south",
        Gravity::East => "east",
        Gravity::West => "west",
        Gravity::NorthEast => "northeast",
        Gravity::NorthWest => "northwest",
        Gravity::SouthEast => "southeast",
        Gravity::SouthWest => "southwest",
        Gravity::Smart => "smart",
    }
}

fn rotation_degrees(rotation: Rotation) -> u16 {
    match rotation {
        Rotation::R0 => 0,
        Rotation::R90 => 90,
        Rotation::R180 => 180,
        Rotation::R270 => 270,
    }
}

fn format_request_name(request: FormatRequest) -> &'static str {
    match request {
        FormatRequest::Auto => "auto",
        FormatRequest::Fixed(format) => format.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Spec, SpecError> {
        Spec::parse(q, &Presets::default())
    }

    #[test]
    fn order_and_explicit_defaults_do_not_change_the_variant() {
        let a = parse("w=300&fmt=webp").unwrap();
        let b = parse("fmt=webp&w=300").unwrap();
        let c = parse("fmt=webp&w=300&fit=inside&q=80&dpr=1&gravity=center").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.variant_key(), b.variant_key());
        assert_eq!(a.variant_key(), c.variant_key());
        assert_ne!(a.variant_key(), parse("fmt=webp&w=301").unwrap().variant_key());
    }

    #[test]
    fn canonical_form_is_sorted_with_defaults() {
        let spec = parse("w=300&h=200&fit=cover&fmt=webp&bg=fff&dpr=1.5").unwrap();
        assert_eq!(
            spec.canonical(),
            "bg=ffffffff&dpr=1.5&enlarge=0&fit=cover&fmt=webp&gravity=center&gray=0&h=200&lossless=0\
             &progressive=0&q=80&rotate=0&w=300"
        );
        assert_eq!(spec.target_box(), (Some(450), Some(300)));
    }

    #[test]
    fn errors_name_the_parameter() {
        for (query, param) in [
            ("w=0", "w"),
            ("w=abc", "w"),
            ("h=99999", "h"),
            ("fit=squash", "fit"),
            ("gravity=up", "gravity"),
            ("crop=1,2,3", "crop"),
            ("crop=0,0,0,5", "crop"),
            ("rotate=45", "rotate"),
            ("flip=x", "flip"),
            ("blur=0.1", "blur"),
            ("blur=NaN", "blur"),
            ("sharpen=11", "sharpen"),
            ("fmt=bmp", "fmt"),
            ("q=0", "q"),
            ("q=101", "q"),
            ("bg=zzzzzz", "bg"),
            ("bg=12345", "bg"),
            ("dpr=5", "dpr"),
            ("dpr=1.234", "dpr"),
            ("enlarge=maybe", "enlarge"),
            ("size=3", "size"),
            ("w=1&w=2", "w"),
            ("preset=missing", "preset"),
        ] {
            let err = parse(query).expect_err(query);
            assert_eq!(err.param, param, "{query}: {err}");
        }
    }

    #[test]
    fn values_are_parsed() {
        let spec = parse("crop=10,20,30,40&rotate=270&flip=v&blur=1.255&gray&bg=%2300ff0080&fmt=auto&q=55").unwrap();
        assert_eq!(spec.crop, Some(CropRect { x: 10, y: 20, width: 30, height: 40 }));
        assert_eq!(spec.rotate, Rotation::R270);
        assert_eq!(spec.flip, Some(Flip::Vertical));
        assert_eq!(spec.blur, Some(1.26));
        assert!(spec.gray);
        assert_eq!(spec.background, Some(Color { r: 0, g: 255, b: 0, a: 128 }));
        assert_eq!(spec.format, Some(FormatRequest::Auto));
        assert_eq!(spec.quality, 55);
        assert_eq!(parse("blur=0").unwrap().blur, None);
    }

    #[test]
    fn presets_expand_and_explicit_keys_win() {
        let presets =
            Presets::new(HashMap::from([("thumb".to_owned(), "w=200&h=200&fit=cover&q=70".to_owned())])).unwrap();
        let spec = Spec::parse("preset=thumb&q=90", &presets).unwrap();
        assert_eq!((spec.width, spec.height, spec.fit, spec.quality), (Some(200), Some(200), Fit::Cover, 90));
        assert!(Presets::new(HashMap::from([("bad".to_owned(), "w=0".to_owned())])).is_err());
        assert!(Presets::new(HashMap::from([("loop".to_owned(), "preset=loop".to_owned())])).is_err());
    }

    fn with_logo(digest: &str) -> Presets {
        let info = WatermarkInfo { digest: digest.to_owned(), width: 10, height: 10 };
        Presets::with_watermarks(HashMap::new(), BTreeMap::from([("logo".to_owned(), info)])).unwrap()
    }

    #[test]
    fn watermarks_have_defaults_a_canonical_form_and_their_image_in_the_key() {
        let presets = with_logo("aa");
        let spec = Spec::parse("w=10&wm=logo", &presets).unwrap();
        let wm = spec.watermark.clone().unwrap();
        assert_eq!((wm.position, wm.scale_percent, wm.opacity_percent, wm.margin), (Gravity::SouthEast, 25, 100, 0));
        assert_eq!(
            spec.canonical(),
            "dpr=1&enlarge=0&fit=inside&gravity=center&gray=0&lossless=0&progressive=0&q=80&rotate=0&w=10\
             &wm=logo&wm_margin=0&wm_opacity=1&wm_pos=southeast&wm_scale=0.25"
        );
        let explicit = "wm_scale=0.25&wm=logo&wm_pos=southeast&wm_opacity=1.00&wm_margin=0&w=10";
        assert_eq!(Spec::parse(explicit, &presets).unwrap().variant_key(), spec.variant_key());
        assert_ne!(Spec::parse("w=10&wm=logo&wm_scale=0.3", &presets).unwrap().variant_key(), spec.variant_key());
        assert_ne!(Spec::parse("w=10", &presets).unwrap().variant_key(), spec.variant_key());
        // A new image under the same name is a new variant; the canonical form stays.
        let replaced = Spec::parse("w=10&wm=logo", &with_logo("bb")).unwrap();
        assert_eq!(replaced.canonical(), spec.canonical());
        assert_ne!(replaced.variant_key(), spec.variant_key());

        let parsed = Spec::parse("wm=logo&wm_pos=northwest&wm_scale=1&wm_opacity=0.05&wm_margin=12", &presets).unwrap();
        let wm = parsed.watermark.unwrap();
        assert_eq!((wm.position, wm.scale_percent, wm.opacity_percent, wm.margin), (Gravity::NorthWest, 100, 5, 12));
        for (query, param) in [
            ("wm=other", "wm"),
            ("wm=", "wm"),
            ("wm_scale=0.5", "wm_scale"),
            ("wm=logo&wm_scale=0", "wm_scale"),
            ("wm=logo&wm_scale=1.01", "wm_scale"),
            ("wm=logo&wm_scale=0.255", "wm_scale"),
            ("wm=logo&wm_scale=NaN", "wm_scale"),
            ("wm=logo&wm_opacity=0", "wm_opacity"),
            ("wm=logo&wm_pos=smart", "wm_pos"),
            ("wm=logo&wm_margin=-1", "wm_margin"),
            ("wm=logo&wm_margin=16385", "wm_margin"),
        ] {
            assert_eq!(Spec::parse(query, &presets).expect_err(query).param, param, "{query}");
        }
        assert!(parse("wm=logo").unwrap_err().message.contains("none configured"));
        // Presets carry watermarks, checked against those configured.
        let marked = HashMap::from([("marked".to_owned(), "w=5&wm=logo".to_owned())]);
        assert!(Presets::new(marked.clone()).is_err());
        let info = WatermarkInfo { digest: String::new(), width: 1, height: 1 };
        let presets = Presets::with_watermarks(marked, BTreeMap::from([("logo".to_owned(), info)])).unwrap();
        assert!(Spec::parse("preset=marked", &presets).unwrap().watermark.is_some());
    }

    #[test]
    fn with_format_fixes_auto() {
        let spec = parse("fmt=auto&w=10").unwrap();
        assert_eq!(spec.with_format(OutputFormat::Webp).output_format(OutputFormat::Jpeg), OutputFormat::Webp);
        assert_eq!(parse("w=10").unwrap().output_format(OutputFormat::Png), OutputFormat::Png);
    }
}
