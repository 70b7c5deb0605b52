//! Criterion benches of each engine stage on real photos from the corpus (`benches/corpus.sh`;
//! set PIXELMILL_CORPUS, default ~/.cache/pixelmill-corpus). Run: `cargo bench -p pixelmill-benches`.

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image::DynamicImage;
use pixelmill::engine::encode::{self, EncodeOptions};
use pixelmill::engine::ops::{self, Region};
use pixelmill::engine::{self, Limits, OutputFormat, Presets, Spec, decode};

/// Decoding alone, measured without the pixel limit.
const UNLIMITED: Limits = Limits {
    max_input_pixels: u64::MAX,
    max_output_pixels: u64::MAX,
    max_render_bytes: u64::MAX,
    max_jpeg_scans: 100,
    max_animation_frames: u32::MAX,
    max_animation_pixels: u64::MAX,
};

fn corpus_file(set: &str) -> Vec<u8> {
    let root = std::env::var_os("PIXELMILL_CORPUS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/pixelmill-corpus")))
        .expect("PIXELMILL_CORPUS or HOME");
    let dir = root.join(set);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run benches/corpus.sh first", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    std::fs::read(&files[0]).expect("corpus file")
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for set in ["jpeg-2560", "jpeg-2560-progressive", "jpeg-5120", "jpeg-5120-progressive"] {
        let bytes = corpus_file(set);
        let probe = decode::probe(&bytes, &UNLIMITED).expect("probe");
        for shrink in [1, 2, 4, 8] {
            group.bench_with_input(BenchmarkId::new(set, format!("1/{shrink}")), &shrink, |b, &shrink| {
                b.iter(|| decode::decode(&bytes, &probe, shrink, &UNLIMITED).expect("decode"));
            });
        }
        // The own decoder where `jpeg::is_faster` may not pick it, to measure that choice again.
        for shrink in [2u32, 4] {
            let id = BenchmarkId::new(format!("{set} own"), format!("1/{shrink}"));
            group.bench_with_input(id, &shrink, |b, &shrink| {
                b.iter(|| engine::jpeg::decode(&bytes, shrink, 100).expect("decode"));
            });
        }
        // The same scaled decodes by libjpeg-turbo, which the engine used for them before its own
        // decoder (and still uses at full size): the side-by-side of benches/RESULTS.md.
        for shrink in [2usize, 4, 8] {
            let id = BenchmarkId::new(format!("{set} libjpeg-turbo"), format!("1/{shrink}"));
            group.bench_with_input(id, &shrink, |b, &shrink| {
                b.iter(|| {
                    let mut decompressor = turbojpeg::Decompressor::new().expect("decompressor");
                    decompressor.set_scaling_factor(turbojpeg::ScalingFactor::new(1, shrink)).expect("scale");
                    let header = decompressor.read_header(&bytes).expect("header");
                    let factor = decompressor.scaling_factor();
                    let (width, height) = (factor.scale(header.width), factor.scale(header.height));
                    let mut pixels = vec![0u8; width * height * 3];
                    let image = turbojpeg::Image {
                        pixels: &mut pixels[..],
                        width,
                        pitch: width * 3,
                        height,
                        format: turbojpeg::PixelFormat::RGB,
                    };
                    decompressor.decompress(&bytes, image).expect("decode");
                    pixels
                });
            });
        }
    }
    group.finish();
}

fn bench_resize(c: &mut Criterion) {
    let bytes = corpus_file("jpeg-2560");
    let probe = decode::probe(&bytes, &UNLIMITED).expect("probe");
    let mut group = c.benchmark_group("resize-lanczos3");
    for (label, shrink) in [("2560x1600", 1), ("640x400", 4)] {
        let image = decode::decode(&bytes, &probe, shrink, &UNLIMITED).expect("decode");
        group.throughput(Throughput::Elements(u64::from(image.width() * image.height())));
        group.bench_function(BenchmarkId::new(label, "to 400x250"), |b| {
            b.iter(|| ops::resize(&image, Region::whole(&image), (400, 250)).expect("resize"));
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let bytes = corpus_file("jpeg-2560");
    let probe = decode::probe(&bytes, &UNLIMITED).expect("probe");
    let full = decode::decode(&bytes, &probe, 1, &UNLIMITED).expect("decode");
    let options = EncodeOptions { quality: 80, progressive: false, lossless: false };
    let mut group = c.benchmark_group("encode");
    group.sample_size(10);
    for (label, size) in [("400x250", (400, 250)), ("1000x625", (1000, 625))] {
        let image: DynamicImage = ops::resize(&full, Region::whole(&full), size).expect("resize");
        for format in [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Avif, OutputFormat::Png, OutputFormat::Gif]
        {
            group.bench_function(BenchmarkId::new(format.name(), label), |b| {
                b.iter(|| encode::encode(&image, format, options).expect("encode"));
            });
        }
    }
    group.finish();
}

fn bench_render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render-400px");
    let limits = Limits::default();
    for set in ["jpeg-2560", "jpeg-2560-progressive", "jpeg-5120", "jpeg-5120-progressive"] {
        let bytes = corpus_file(set);
        for fmt in ["jpeg", "webp"] {
            let spec = Spec::parse(&format!("w=400&fmt={fmt}"), &Presets::default()).expect("spec");
            group.bench_function(BenchmarkId::new(set, fmt), |b| {
                b.iter(|| engine::render(&bytes, &spec, &limits).expect("render"));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_decode, bench_resize, bench_encode, bench_render);
criterion_main!(benches);
