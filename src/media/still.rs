//! A still image of a keyframe: decoded with openh264, scaled down to the width asked for, and
//! encoded as a JPEG. CPU work of tens of milliseconds: run it off the async threads.

use crate::media::h264::split_length_prefixed;
use crate::media::Frame;
use openh264::decoder::{DecodedYUV, Decoder};
use openh264::formats::YUVSource;

/// JPEG quality, 1-100: sharp enough for a dashboard, a few tens of KB at 720p.
const QUALITY: u8 = 80;

#[derive(Debug, thiserror::Error)]
pub enum StillError {
    #[error("the frame is not a keyframe")]
    NotAKeyframe,
    #[error("the keyframe's NAL units cannot be read: {0}")]
    Malformed(String),
    #[error("the keyframe does not decode: {0}")]
    Decode(String),
    #[error("the keyframe decoded to no picture")]
    NoPicture,
    #[error("cannot encode the JPEG: {0}")]
    Encode(#[from] jpeg_encoder::EncodingError),
}

/// The picture of `keyframe` as a JPEG, `width` pixels wide at most (its own width when `None`
/// or larger), its aspect kept.
pub fn jpeg_of_keyframe(keyframe: &Frame, width: Option<u32>) -> Result<Vec<u8>, StillError> {
    if !keyframe.keyframe {
        return Err(StillError::NotAKeyframe);
    }
    let nals = split_length_prefixed(&keyframe.data).map_err(|error| StillError::Malformed(error.to_string()))?;
    let parameters = [&keyframe.parameters.sps, &keyframe.parameters.pps];
    let mut annex_b = Vec::with_capacity(keyframe.data.len() + 64);
    // The parameter sets first, in case the camera left them out of this keyframe.
    for nal in parameters.into_iter().chain(nals.iter()) {
        annex_b.extend_from_slice(&[0, 0, 0, 1]);
        annex_b.extend_from_slice(nal);
    }
    let mut decoder = Decoder::new().map_err(|error| StillError::Decode(error.to_string()))?;
    let decoded = decoder.decode(&annex_b).map_err(|error| StillError::Decode(error.to_string()))?.map(|picture| rgb_of(&picture));
    let (rgb, source_width, source_height) = match decoded {
        Some(decoded) => decoded,
        // A picture the decoder holds back until told that nothing follows.
        None => rgb_of(decoder.flush_remaining().map_err(|error| StillError::Decode(error.to_string()))?.last().ok_or(StillError::NoPicture)?),
    };
    encode(&rgb, source_width, source_height, width)
}

/// The picture's pixels as RGB, with its width and height.
fn rgb_of(picture: &DecodedYUV<'_>) -> (Vec<u8>, usize, usize) {
    let (width, height) = picture.dimensions();
    let mut rgb = vec![0; width * height * 3];
    picture.write_rgb8(&mut rgb);
    (rgb, width, height)
}

fn encode(rgb: &[u8], width: usize, height: usize, wanted_width: Option<u32>) -> Result<Vec<u8>, StillError> {
    let target_width = wanted_width.map_or(width, |wanted| (wanted as usize).clamp(1, width));
    // The aspect kept, rounded, at least a pixel.
    let target_height = ((height * target_width + width / 2) / width).max(1);
    let scaled;
    let pixels = if target_width == width {
        rgb
    } else {
        scaled = scale_down(rgb, (width, height), (target_width, target_height));
        &scaled[..]
    };
    let mut jpeg = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut jpeg, QUALITY);
    encoder.encode(pixels, target_width as u16, target_height as u16, jpeg_encoder::ColorType::Rgb)?;
    Ok(jpeg)
}

/// Scales an RGB picture down by averaging the source pixels each target pixel covers.
fn scale_down(rgb: &[u8], (width, height): (usize, usize), (target_width, target_height): (usize, usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_width * target_height * 3);
    for ty in 0..target_height {
        let (y0, y1) = (ty * height / target_height, ((ty + 1) * height / target_height).max(ty * height / target_height + 1));
        for tx in 0..target_width {
            let (x0, x1) = (tx * width / target_width, ((tx + 1) * width / target_width).max(tx * width / target_width + 1));
            let mut sum = [0u32; 3];
            for y in y0..y1 {
                let row = &rgb[(y * width + x0) * 3..(y * width + x1) * 3];
                for pixel in row.chunks_exact(3) {
                    for (total, value) in sum.iter_mut().zip(pixel) {
                        *total += u32::from(*value);
                    }
                }
            }
            let count = ((y1 - y0) * (x1 - x0)) as u32;
            out.extend(sum.iter().map(|total| (total / count) as u8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_down_averages_what_each_pixel_covers() {
        // 4x2: a white left half, a black right half; to 2x1.
        let white = [255u8, 255, 255];
        let black = [0u8, 0, 0];
        let rgb: Vec<u8> = [white, white, black, black, white, white, black, black].concat();
        assert_eq!(scale_down(&rgb, (4, 2), (2, 1)), [white, black].concat());
        // 3x1 grey steps to 1x1: their mean.
        assert_eq!(scale_down(&[0, 0, 0, 90, 90, 90, 180, 180, 180], (3, 1), (1, 1)), [90, 90, 90]);
    }
}
