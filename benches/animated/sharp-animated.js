#!/usr/bin/env node
// The animated side of benches/animated/vs-sharp.sh, with the sharp (libvips) that
// ../shared/peers/install.sh installs.
//   make OUT_DIR FRAMES PHOTO...   writes animation.gif and animation.webp: FRAMES frames of
//                                  480x270, each a different crop of the photos, 80 ms each,
//                                  looping forever.
//   bench WIDTH FORMAT FILE...     renders each file to WIDTH px wide in FORMAT (gif or webp),
//                                  every frame (`animated: true`), one thread, 5 times after a
//                                  warm-up; one JSON line a file, as sharp-batch.js prints.
//   pages FILE                     prints the frames libvips reads in FILE.
const path = require('path');
const fs = require('fs');
const home = process.env.PEERS_HOME || path.join(require('os').homedir(), '.cache/pixelmill-peers');
const sharp = require(path.join(home, 'node_modules/sharp'));
sharp.concurrency(1);
sharp.cache(false);
const [mode, ...args] = process.argv.slice(2);

async function make(outDir, count, photos) {
  const frames = [];
  for (let i = 0; i < count; i++) {
    const photo = photos[i % photos.length];
    const meta = await sharp(photo).metadata();
    // A window that moves across the photo from frame to frame, like a pan.
    const width = Math.floor(meta.width / 2), height = Math.floor(meta.height / 2);
    const left = Math.floor(((meta.width - width) * (i % 8)) / 8), top = Math.floor(((meta.height - height) * (i % 5)) / 5);
    frames.push(await sharp(photo).extract({ left, top, width, height }).resize(480, 270).png().toBuffer());
  }
  const joined = () => sharp(frames, { join: { animated: true } });
  const delay = Array(count).fill(80);
  fs.writeFileSync(path.join(outDir, 'animation.gif'), await joined().gif({ delay, loop: 0 }).toBuffer());
  fs.writeFileSync(path.join(outDir, 'animation.webp'), await joined().webp({ delay, loop: 0, quality: 80 }).toBuffer());
}

async function bench(width, format, files) {
  const render = (buf) => {
    const image = sharp(buf, { animated: true }).resize(width, null, { fit: 'inside', withoutEnlargement: true });
    return (format === 'gif' ? image.gif() : image.webp({ quality: 80 })).toBuffer();
  };
  for (const file of files) {
    const buf = fs.readFileSync(file);
    let out = await render(buf);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 5; i++) out = await render(buf);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / 5;
    const meta = await sharp(out, { animated: true }).metadata();
    console.log(JSON.stringify({ file: path.basename(file), ms: +ms.toFixed(3), bytes: out.length, pages: meta.pages }));
  }
}

(async () => {
  if (mode === 'make') await make(args[0], Number(args[1]), args.slice(2));
  else if (mode === 'bench') await bench(Number(args[0]), args[1], args.slice(2));
  else if (mode === 'pages') console.log((await sharp(args[0], { animated: true }).metadata()).pages);
  else throw new Error('usage: sharp-animated.js make OUT_DIR FRAMES PHOTO... | bench WIDTH FORMAT FILE... | pages FILE');
})().catch((e) => { console.error(e.message); process.exit(1); });
