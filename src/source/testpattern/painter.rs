//! Paints the test pattern into an I420 picture: moving stripes, colour bars, a moving box,
//! the frame counter in digits, and the barcode strips.

use super::barcode;

/// Luma levels of video range (ITU-R BT.601): black and white.
const BLACK: u8 = 16;
const WHITE: u8 = 235;
const NEUTRAL_CHROMA: u8 = 128;

/// 3x5 digit glyphs, one row of 3 bits per entry, top row first.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7], [2, 6, 2, 2, 7], [7, 1, 7, 4, 7], [7, 1, 7, 1, 7], [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7], [7, 4, 7, 5, 7], [7, 1, 1, 1, 1], [7, 5, 7, 5, 7], [7, 5, 7, 1, 7],
];

pub struct Painter {
    width: usize,
    height: usize,
    /// Y plane, then U, then V (I420).
    pub yuv: Vec<u8>,
}

impl Painter {
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width as usize, height as usize);
        Self { width, height, yuv: vec![0; width * height * 3 / 2] }
    }

    pub fn paint(&mut self, frame_number: u64, capture_unix_ms: u64) {
        self.paint_background(frame_number);
        self.paint_box(frame_number);
        self.paint_counter(frame_number);
        let (block_w, block_h) = barcode::block_size(self.width as u32, self.height as u32);
        self.paint_strip(0, block_w as usize, block_h as usize, barcode::encode(capture_unix_ms as u32));
        self.paint_strip(1, block_w as usize, block_h as usize, barcode::encode(frame_number as u32));
    }

    fn paint_background(&mut self, frame_number: u64) {
        let shift = (frame_number * 4) as usize;
        let (w, h) = (self.width, self.height);
        let (luma, chroma) = self.yuv.split_at_mut(w * h);
        for (y, row) in luma.chunks_exact_mut(w).enumerate() {
            for (x, px) in row.iter_mut().enumerate() {
                // Diagonal stripes moving right: motion in every macroblock, as a real scene has.
                *px = 60 + (((x + y + shift) / 8) % 2) as u8 * 40 + ((x * 64 / w) as u8);
            }
        }
        let (u_plane, v_plane) = chroma.split_at_mut(w * h / 4);
        let bar_colours: [(u8, u8); 8] =
            [(128, 128), (44, 142), (156, 44), (72, 58), (184, 198), (212, 114), (100, 212), (128, 128)];
        for plane_row in 0..h / 2 {
            for x in 0..w / 2 {
                let (u, v) = bar_colours[x * 8 / (w / 2)];
                u_plane[plane_row * w / 2 + x] = u;
                v_plane[plane_row * w / 2 + x] = v;
            }
        }
    }

    fn paint_box(&mut self, frame_number: u64) {
        let size = self.height / 6;
        let travel = self.width - size;
        let position = (frame_number as usize * 6) % (2 * travel);
        let left = if position < travel { position } else { 2 * travel - position };
        let top = self.height / 2 - size / 2;
        self.fill_luma(left, top, size, size, WHITE);
    }

    fn paint_counter(&mut self, frame_number: u64) {
        let scale = (self.height / 60).max(2);
        let text = frame_number.to_string();
        let top = self.height - 7 * scale;
        self.fill_luma(scale, top - scale, (text.len() * 4 + 1) * scale, 7 * scale, BLACK);
        for (i, digit) in text.bytes().enumerate() {
            let glyph = DIGITS[usize::from(digit - b'0')];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        let x = scale * (2 + i * 4 + col);
                        self.fill_luma(x, top + row * scale, scale, scale, WHITE);
                    }
                }
            }
        }
    }

    fn paint_strip(&mut self, row: usize, block_w: usize, block_h: usize, code: u64) {
        let top = row * block_h;
        for bit in 0..barcode::BITS as usize {
            let on = code >> (barcode::BITS as usize - 1 - bit) & 1 == 1;
            self.fill_luma(bit * block_w, top, block_w, block_h, if on { WHITE } else { BLACK });
        }
        // Grey chroma under the strips so colour bars do not tint the blocks.
        let (w, h) = (self.width, self.height);
        let strip_rows = (top / 2)..((top + block_h) / 2);
        for plane in [w * h, w * h + w * h / 4] {
            for chroma_row in strip_rows.clone() {
                let start = plane + chroma_row * w / 2;
                self.yuv[start..start + w / 2].fill(NEUTRAL_CHROMA);
            }
        }
    }

    fn fill_luma(&mut self, left: usize, top: usize, width: usize, height: usize, value: u8) {
        let right = (left + width).min(self.width);
        for y in top..(top + height).min(self.height) {
            self.yuv[y * self.width + left..y * self.width + right].fill(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a strip back from the luma plane the way the page does: the centre of each block.
    fn read_strip(painter: &Painter, row: usize) -> Option<u32> {
        let (block_w, block_h) = barcode::block_size(painter.width as u32, painter.height as u32);
        let y = row * block_h as usize + block_h as usize / 2;
        let code = (0..barcode::BITS as usize).fold(0u64, |code, bit| {
            let x = bit * block_w as usize + block_w as usize / 2;
            (code << 1) | u64::from(painter.yuv[y * painter.width + x] > 128)
        });
        barcode::decode(code)
    }

    #[test]
    fn strips_carry_time_and_counter() {
        let mut painter = Painter::new(1280, 720);
        painter.paint(1234, 1_700_000_123_456);
        assert_eq!(read_strip(&painter, 0), Some(1_700_000_123_456u64 as u32));
        assert_eq!(read_strip(&painter, 1), Some(1234));
    }
}
