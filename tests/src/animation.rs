//! Animated GIFs written frame by frame, with the frame regions, disposals and loop counts a
//! test names, so that what a decoder must compose is known.

use gif::{DisposalMethod, Encoder, Frame, Repeat};

/// One frame: a rectangle of one colour at `(left, top)`, shown for `delay_cs` hundredths of a
/// second, then disposed of as `dispose` says.
#[derive(Debug, Clone, Copy)]
pub struct Rect {
    pub left: u16,
    pub top: u16,
    pub width: u16,
    pub height: u16,
    pub rgb: [u8; 3],
    pub delay_cs: u16,
    pub dispose: DisposalMethod,
}

/// A GIF of a `width` x `height` canvas with these frames; `repeat` is the NETSCAPE2.0 loop
/// count (none: no loop extension, the animation plays once).
pub fn gif(width: u16, height: u16, frames: &[Rect], repeat: Option<Repeat>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = Encoder::new(&mut out, width, height, &[]).expect("gif header");
        if let Some(repeat) = repeat {
            encoder.set_repeat(repeat).expect("loop extension");
        }
        for rect in frames {
            let mut frame = Frame {
                left: rect.left,
                top: rect.top,
                width: rect.width,
                height: rect.height,
                delay: rect.delay_cs,
                dispose: rect.dispose,
                palette: Some(vec![rect.rgb[0], rect.rgb[1], rect.rgb[2], 0, 0, 0]),
                ..Frame::default()
            };
            frame.buffer = vec![0u8; usize::from(rect.width) * usize::from(rect.height)].into();
            encoder.write_frame(&frame).expect("gif frame");
        }
    }
    out
}

/// The test animation: a 64x48 red canvas, then a blue 16x16 square at (8, 8) that is disposed
/// to the background (transparent) after it shows, then a green one at (40, 24) that stays;
/// delays of 100, 200 and 300 ms; played three times (two repeats).
pub fn squares() -> Vec<u8> {
    let frame =
        |left, top, width, height, rgb, delay_cs, dispose| Rect { left, top, width, height, rgb, delay_cs, dispose };
    gif(
        64,
        48,
        &[
            frame(0, 0, 64, 48, [255, 0, 0], 10, DisposalMethod::Keep),
            frame(8, 8, 16, 16, [0, 0, 255], 20, DisposalMethod::Background),
            frame(40, 24, 16, 16, [0, 255, 0], 30, DisposalMethod::Keep),
        ],
        Some(Repeat::Finite(2)),
    )
}

/// `frames` frames of one pixel each on a `width` x `height` canvas: a small file that
/// describes a large animation.
pub fn many_frames(width: u16, height: u16, frames: usize) -> Vec<u8> {
    let pixel =
        Rect { left: 0, top: 0, width: 1, height: 1, rgb: [9, 9, 9], delay_cs: 2, dispose: DisposalMethod::Keep };
    gif(width, height, &vec![pixel; frames], Some(Repeat::Infinite))
}
