//! HEIC input (HEVC in HEIF, as phones write it), behind the `heic` feature: libheif with
//! libde265, the system's shared libraries (Debian's libheif1; LGPL-3.0, dynamically linked;
//! README says why the feature is off by default). The container is read by
//! [`heif`](crate::engine::heif) first, in safe code, so the size is checked before libheif
//! sees the file; libheif then decodes the primary image (grids of tiles included) to 8-bit
//! RGB(A) and applies its rotation and mirror itself.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::{self, NonNull};

use image::{DynamicImage, RgbImage, RgbaImage};

use crate::engine::error::EngineError;
use crate::engine::heif::Still;

#[repr(C)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

#[repr(C)]
struct HeifContext {
    _opaque: [u8; 0],
}

#[repr(C)]
struct HeifImageHandle {
    _opaque: [u8; 0],
}

#[repr(C)]
struct HeifImage {
    _opaque: [u8; 0],
}

/// `heif_colorspace_RGB`, `heif_chroma_interleaved_RGB` / `_RGBA`, `heif_channel_interleaved`.
const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHROMA_INTERLEAVED_RGBA: c_int = 11;
const CHANNEL_INTERLEAVED: c_int = 10;

#[link(name = "heif")]
unsafe extern "C" {
    fn heif_context_alloc() -> *mut HeifContext;
    fn heif_context_free(context: *mut HeifContext);
    fn heif_context_read_from_memory_without_copy(
        context: *mut HeifContext,
        memory: *const c_void,
        size: usize,
        options: *const c_void,
    ) -> HeifError;
    fn heif_context_set_maximum_image_size_limit(context: *mut HeifContext, maximum: c_int);
    fn heif_context_set_max_decoding_threads(context: *mut HeifContext, threads: c_int);
    fn heif_context_get_primary_image_handle(context: *mut HeifContext, handle: *mut *mut HeifImageHandle)
    -> HeifError;
    fn heif_image_handle_release(handle: *const HeifImageHandle);
    fn heif_image_handle_has_alpha_channel(handle: *const HeifImageHandle) -> c_int;
    fn heif_decode_image(
        handle: *const HeifImageHandle,
        image: *mut *mut HeifImage,
        colorspace: c_int,
        chroma: c_int,
        options: *const c_void,
    ) -> HeifError;
    fn heif_image_release(image: *const HeifImage);
    fn heif_image_get_width(image: *const HeifImage, channel: c_int) -> c_int;
    fn heif_image_get_height(image: *const HeifImage, channel: c_int) -> c_int;
    fn heif_image_get_plane_readonly(image: *const HeifImage, channel: c_int, stride: *mut c_int) -> *const u8;
}

fn corrupt(detail: impl ToString) -> EngineError {
    EngineError::corrupt("heic", detail)
}

/// A libheif error as text, or `None` for success (code 0).
fn failure(error: &HeifError) -> Option<String> {
    if error.code == 0 {
        return None;
    }
    let message = if error.message.is_null() {
        String::new()
    } else {
        // SAFETY: libheif's messages are NUL-terminated static strings (never NULL, per its
        // header; checked all the same).
        unsafe { CStr::from_ptr(error.message) }.to_string_lossy().into_owned()
    };
    Some(format!("{message} ({}.{})", error.code, error.subcode))
}

/// Reads the container: the primary image must be HEVC (`hvc1`) or a grid of HEVC tiles.
pub fn read(bytes: &[u8]) -> Result<Still<'_>, EngineError> {
    let still = crate::engine::heif::read(bytes, "heic")?;
    if &still.data.kind != b"hvc1" {
        return Err(corrupt("the primary item is not an HEVC image"));
    }
    Ok(still)
}

/// The libheif objects of one decode, released when dropped.
struct Session {
    context: NonNull<HeifContext>,
    handle: *mut HeifImageHandle,
    image: *mut HeifImage,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: each pointer is either NULL or owned by this session, released once here.
        unsafe {
            if !self.image.is_null() {
                heif_image_release(self.image);
            }
            if !self.handle.is_null() {
                heif_image_handle_release(self.handle);
            }
            heif_context_free(self.context.as_ptr());
        }
    }
}

/// Decodes the primary image as 8-bit RGB or RGBA, rotated and mirrored as the file says, of
/// `width` x `height` as displayed (the probe's size, which the result must have).
pub fn decode(bytes: &[u8], width: u32, height: u32) -> Result<DynamicImage, EngineError> {
    // SAFETY: a fresh context, owned by the session from here on.
    let context = NonNull::new(unsafe { heif_context_alloc() })
        .ok_or_else(|| EngineError::Internal("libheif could not allocate a context".to_owned()))?;
    let mut session = Session { context, handle: ptr::null_mut(), image: ptr::null_mut() };
    // libheif's own bound on what it allocates for an image or a tile: the square of this side
    // (tiles are padded past the image, and an alpha plane is checked against it too). Strictly
    // past the image's side: libheif 1.15 refused a 4096x1 image under a limit of 4096.
    let side = c_int::try_from((width.max(height).max(4096) + 1).next_multiple_of(512)).unwrap_or(c_int::MAX);
    // SAFETY: the context is live; `bytes` outlives the session, as libheif reads it without
    // copying; the handle and image pointers are written by libheif.
    unsafe {
        heif_context_set_maximum_image_size_limit(context.as_ptr(), side);
        heif_context_set_max_decoding_threads(context.as_ptr(), 0);
        let read = heif_context_read_from_memory_without_copy(
            context.as_ptr(),
            bytes.as_ptr().cast(),
            bytes.len(),
            ptr::null(),
        );
        if let Some(error) = failure(&read) {
            return Err(corrupt(error));
        }
        let primary = heif_context_get_primary_image_handle(context.as_ptr(), &mut session.handle);
        if let Some(error) = failure(&primary) {
            return Err(corrupt(error));
        }
    }
    // SAFETY: the handle is live.
    let alpha = unsafe { heif_image_handle_has_alpha_channel(session.handle) } != 0;
    let chroma = if alpha { CHROMA_INTERLEAVED_RGBA } else { CHROMA_INTERLEAVED_RGB };
    // SAFETY: the handle is live; the image pointer is written by libheif.
    let decoded = unsafe { heif_decode_image(session.handle, &mut session.image, COLORSPACE_RGB, chroma, ptr::null()) };
    if let Some(error) = failure(&decoded) {
        return Err(corrupt(error));
    }
    let channels = if alpha { 4 } else { 3 };
    let mut stride: c_int = 0;
    // SAFETY: the image is live; the plane holds `height` rows of `stride` bytes, valid while
    // the image is, and is copied out before the session ends.
    let pixels = unsafe {
        let (w, h) = (
            heif_image_get_width(session.image, CHANNEL_INTERLEAVED),
            heif_image_get_height(session.image, CHANNEL_INTERLEAVED),
        );
        if (u32::try_from(w).ok(), u32::try_from(h).ok()) != (Some(width), Some(height)) {
            return Err(corrupt(format!("decodes to {w}x{h}, not the {width}x{height} its properties say")));
        }
        let plane = heif_image_get_plane_readonly(session.image, CHANNEL_INTERLEAVED, &mut stride);
        let row = width as usize * channels;
        let stride = usize::try_from(stride).unwrap_or(0);
        if plane.is_null() || stride < row {
            return Err(corrupt("the decoded image has no pixels"));
        }
        let mut pixels = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            pixels.extend_from_slice(std::slice::from_raw_parts(plane.add(y * stride), row));
        }
        pixels
    };
    drop(session);
    let internal = || EngineError::Internal("decoded buffer has the wrong size".to_owned());
    Ok(if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, pixels).ok_or_else(internal)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(internal)?)
    })
}
