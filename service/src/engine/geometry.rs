//! Geometry: from a source size and a spec to the sizes of each step, before any pixel moves.
//!
//! Vocabulary: the *region* is the part of the (EXIF-oriented) source that is used, the whole
//! image or the `crop` rectangle; it is *resized* to an intermediate size in the region's own
//! orientation; the user's `rotate` turns it; then `fit` may *trim* it (cover) or *pad* it
//! (contain) to the final box, in the final orientation.

use crate::engine::spec::{Fit, Rotation, Spec};

/// What happens after the resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    None,
    /// Cut the resized image down to this size, at the gravity.
    Trim {
        width: u32,
        height: u32,
    },
    /// Place the resized image on a canvas of this size, at the gravity.
    Pad {
        width: u32,
        height: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Size after resizing, in the region's orientation (before `rotate`).
    pub resized: (u32, u32),
    pub finish: Finish,
}

impl Plan {
    /// The final output size.
    pub fn output_size(&self, rotate: Rotation) -> (u32, u32) {
        match self.finish {
            Finish::Trim { width, height } | Finish::Pad { width, height } => (width, height),
            Finish::None => turned(self.resized, rotate),
        }
    }
}

/// Swaps width and height for a quarter turn.
pub fn turned((w, h): (u32, u32), rotate: Rotation) -> (u32, u32) {
    match rotate {
        Rotation::R90 | Rotation::R270 => (h, w),
        Rotation::R0 | Rotation::R180 => (w, h),
    }
}

fn scaled(value: u32, scale: f64) -> u32 {
    ((f64::from(value) * scale).round() as u32).max(1)
}

/// Plans the resize of a `region` (width, height in the source's orientation) for `spec`.
pub fn plan(region: (u32, u32), spec: &Spec) -> Plan {
    // Work in the region's orientation: a quarter turn swaps the box.
    let (box_w, box_h) = {
        let (w, h) = spec.target_box();
        match spec.rotate {
            Rotation::R90 | Rotation::R270 => (h, w),
            Rotation::R0 | Rotation::R180 => (w, h),
        }
    };
    let (src_w, src_h) = region;
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let limit = |scale: f64| if spec.enlarge { scale } else { scale.min(1.0) };
    let keep_aspect = |scale: f64| Plan { resized: (scaled(src_w, scale), scaled(src_h, scale)), finish: Finish::None };

    let (bw, bh) = match (box_w, box_h) {
        (None, None) => {
            return Plan { resized: region, finish: Finish::None };
        }
        (Some(w), None) => return keep_aspect(limit(f64::from(w) / sw)),
        (None, Some(h)) => return keep_aspect(limit(f64::from(h) / sh)),
        (Some(w), Some(h)) => (w, h),
    };
    let (fx, fy) = (f64::from(bw) / sw, f64::from(bh) / sh);
    match spec.fit {
        Fit::Inside => keep_aspect(limit(fx.min(fy))),
        Fit::Outside => keep_aspect(limit(fx.max(fy))),
        Fit::Fill => Plan { resized: (scaled(src_w, limit(fx)), scaled(src_h, limit(fy))), finish: Finish::None },
        Fit::Cover | Fit::Contain => {
            let wanted = if spec.fit == Fit::Cover { fx.max(fy) } else { fx.min(fy) };
            let scale = limit(wanted);
            // Without enlargement the box shrinks with the image, keeping its aspect ratio.
            let shrink_box = scale / wanted;
            let (fw, fh) = turned((scaled(bw, shrink_box), scaled(bh, shrink_box)), spec.rotate);
            let resized = (scaled(src_w, scale), scaled(src_h, scale));
            let (rw, rh) = turned(resized, spec.rotate);
            let finish = if spec.fit == Fit::Cover {
                Finish::Trim { width: fw.min(rw), height: fh.min(rh) }
            } else {
                Finish::Pad { width: fw.max(rw), height: fh.max(rh) }
            };
            let finish = if (rw, rh) == finish_size(finish) { Finish::None } else { finish };
            Plan { resized, finish }
        }
    }
}

fn finish_size(finish: Finish) -> (u32, u32) {
    match finish {
        Finish::Trim { width, height } | Finish::Pad { width, height } => (width, height),
        Finish::None => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spec::Presets;

    fn plan_for(region: (u32, u32), query: &str) -> Plan {
        plan(region, &Spec::parse(query, &Presets::default()).unwrap())
    }

    #[test]
    fn fits() {
        let none = Finish::None;
        assert_eq!(plan_for((2000, 1000), "w=400"), Plan { resized: (400, 200), finish: none });
        assert_eq!(plan_for((2000, 1000), "h=100"), Plan { resized: (200, 100), finish: none });
        assert_eq!(plan_for((2000, 1000), "w=400&h=400"), Plan { resized: (400, 200), finish: none });
        assert_eq!(plan_for((2000, 1000), "w=400&h=400&fit=outside"), Plan { resized: (800, 400), finish: none });
        assert_eq!(plan_for((2000, 1000), "w=400&h=400&fit=fill"), Plan { resized: (400, 400), finish: none });
        assert_eq!(
            plan_for((2000, 1000), "w=400&h=400&fit=cover"),
            Plan { resized: (800, 400), finish: Finish::Trim { width: 400, height: 400 } }
        );
        assert_eq!(
            plan_for((2000, 1000), "w=400&h=400&fit=contain"),
            Plan { resized: (400, 200), finish: Finish::Pad { width: 400, height: 400 } }
        );
        assert_eq!(plan_for((2000, 1000), "w=200&h=100&fit=cover"), Plan { resized: (200, 100), finish: none });
    }

    #[test]
    fn no_enlargement_unless_asked() {
        assert_eq!(plan_for((200, 100), "w=400").resized, (200, 100));
        assert_eq!(plan_for((200, 100), "w=400&enlarge=1").resized, (400, 200));
        // Cover keeps the box's aspect ratio at the source's resolution.
        assert_eq!(
            plan_for((200, 100), "w=400&h=400&fit=cover"),
            Plan { resized: (200, 100), finish: Finish::Trim { width: 100, height: 100 } }
        );
        assert_eq!(plan_for((200, 100), "w=400&h=50&fit=fill").resized, (200, 50));
    }

    #[test]
    fn dpr_and_rotation() {
        assert_eq!(plan_for((2000, 1000), "w=400&dpr=2").resized, (800, 400));
        // After a quarter turn the 2000x1000 region is 1000 wide: w=100 means 1/10.
        let plan = plan_for((2000, 1000), "w=100&rotate=90");
        assert_eq!(plan.resized, (200, 100));
        assert_eq!(plan.output_size(Rotation::R90), (100, 200));
        let plan = plan_for((2000, 1000), "w=300&h=100&fit=cover&rotate=270");
        assert_eq!(plan.output_size(Rotation::R270), (300, 100));
    }
}
