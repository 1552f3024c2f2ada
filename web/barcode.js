// Reads the capture time painted by Lookout's test pattern (src/source/testpattern/barcode.rs):
// two strips at the top of the picture, each BITS blocks wide, white = 1, most significant bit
// first: 32 data bits, then an 8-bit check. Row 0 is the low 32 bits of the Unix time in ms at
// capture, row 1 the frame counter. Keep this file in step with barcode.rs.

const BITS = 40;
const CHECK_SALT = 0x5a;

function blockSize(width, height) {
  return [Math.floor(width / BITS), Math.max(8, Math.floor(height / 24))];
}

function check(value) {
  const bytes = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  return (bytes.reduce((a, b) => (a + b) & 0xff, 0) ^ CHECK_SALT) & 0xff;
}

function readRow(pixels, width, row, blockW, blockH) {
  const y = row * blockH + Math.floor(blockH / 2);
  let value = 0;
  let checkBits = 0;
  for (let bit = 0; bit < BITS; bit++) {
    const x = bit * blockW + Math.floor(blockW / 2);
    const i = (y * width + x) * 4;
    const luma = 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
    const on = luma > 128 ? 1 : 0;
    if (bit < 32) value = ((value << 1) | on) >>> 0;
    else checkBits = (checkBits << 1) | on;
  }
  return checkBits === check(value) ? value : null;
}

export class BarcodeReader {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
  }

  // Returns { captureMs, frame } for the picture now in `video`, or null if there is no code.
  read(video, nowMs) {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return null;
    const [blockW, blockH] = blockSize(width, height);
    const stripHeight = 2 * blockH;
    if (this.canvas.width !== width || this.canvas.height !== stripHeight) {
      this.canvas.width = width;
      this.canvas.height = stripHeight;
    }
    this.context.drawImage(video, 0, 0, width, stripHeight, 0, 0, width, stripHeight);
    const pixels = this.context.getImageData(0, 0, width, stripHeight).data;
    const timeLow = readRow(pixels, width, 0, blockW, blockH);
    const frame = readRow(pixels, width, 1, blockW, blockH);
    if (timeLow === null || frame === null) return null;
    // Rebuild the full time from the low 32 bits, taking the nearest instant. It may lie a few
    // ms ahead: on one machine a picture can be shown within less than the skew between the
    // server's clock and the browser's (its time origin plus a monotonic clock).
    const nowLow = nowMs % 2 ** 32;
    const age = (nowLow - timeLow) | 0;
    return { captureMs: nowMs - age, frame };
  }
}
